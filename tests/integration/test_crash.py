# SPDX-License-Identifier: MIT
"""Issue 7, "Crashes": kill -9 of the daemon at bad moments, then a mount with the same cache
directory. What close()/fsync() acknowledged (returned 0) before the kill must be in S3 and
byte-exact afterwards; data that was pending (staged, EIO at close) is uploaded by the next
mount without being asked; no multipart upload is left in progress; the SQLite cache opens
without a rebuild after a mere kill, and a corrupt or foreign cache file is detected and
rebuilt, never trusted. Then a soak: writers and readers in several processes over one mount
while the proxy injects faults now and then; every file ends with its expected sha256.

Writers run in threads of the test (their syscalls fail with ENOTCONN when the daemon dies)
or, for the soak, in child processes; the acknowledgements are recorded outside the mount.
"""
from __future__ import annotations

import errno
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from httpfault import HttpFaultProxy
from robustutil import (MIB, file_sha, keys, kill9, make_watchdog_fixture, meta_db,
                        rand, s3_sha, sha, uploads, wait_until, write_file)

mount = make_watchdog_fixture(200)

# Lines a mount may log after a crash or while faults are injected (warn level and up).
CRASH_LOG_ALLOW = (
    r" warn: ",
    r" error: upload of \S+ failed: Input/output error \(kept; it will be retried",
    r" error: /\S*: upload at release failed$",
    r" error: LIST \S*: ",
    r" error: (GET|HEAD|PUT|POST|DELETE) ",
    r" error: (unlink|rename|mkdir|rmdir|chmod|chown|utimens|setxattr) \S+: ",
)
# A rebuild of the metadata cache (meta/cachefile.c) logs this at warn level.
REBUILT = "moved it aside"


@pytest.fixture
def proxy(rgw_server):
    p = HttpFaultProxy(rgw_server.host, rgw_server.port)
    yield p
    p.close()


def opts_via(proxy, **extra) -> dict:
    o = {"endpoint": proxy.endpoint, "connect_timeout": 2, "stat_ttl": 600,
         "unmount_timeout": 20}
    o.update(extra)
    return o


def check_acked(s3, bucket, m, acked: dict[str, bytes], via_mount: bool = True) -> None:
    bad = {}
    for name, data in acked.items():
        got = s3_sha(s3, bucket, name)
        if got != (sha(data), len(data)):
            bad[name] = f"S3 has {got}, want ({sha(data)[:12]}.., {len(data)})"
    assert not bad, f"acknowledged data lost or wrong after the crash: {bad}"
    if via_mount:
        for name, data in acked.items():
            assert file_sha(m.path / name) == (sha(data), len(data)), name


def no_rebuild(m) -> None:
    assert REBUILT not in m.run_log, "the cache was rebuilt after a mere kill -9:\n" + m.run_log


def assert_no_uploads_left(s3, bucket, proxy, wait: float = 15) -> None:
    """No multipart upload in progress (after up to wait seconds); else the uploads left and
    the multipart requests of their keys as the proxy saw them."""
    deadline = time.monotonic() + wait
    while uploads(s3, bucket) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = uploads(s3, bucket)
    seen = {k: [e for e in list(proxy.exchanges) if e.key == k and
                e.op in ("mpu_create", "mpu_complete", "mpu_abort") or
                (e.key == k and e.action != "forward")] for k, _ in left}
    assert not left, f"multipart uploads left in progress: {left}; what the proxy saw of " \
                     f"their keys: {seen}"


class Writer(threading.Thread):
    """Runs fn(ack) in a thread; fn calls ack(name, data) after each close()/fsync() that
    returned 0. Errors after the kill (ENOTCONN, ECONNABORTED) end it quietly."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.acked: dict[str, bytes] = {}
        self.progress = 0
        self.error: BaseException | None = None

    def ack(self, name: str, data: bytes) -> None:
        self.acked[name] = data

    def run(self):
        try:
            self.fn(self)
        except OSError as e:
            self.error = e


# --- kill -9 during writes -------------------------------------------------------------------

def test_kill9_during_a_large_sequential_write(mount, s3, bucket, proxy):
    opts = opts_via(proxy, multipart_threshold=16 * MIB, part_size=8 * MIB)
    m = mount(bucket, opts=opts, allow_log=CRASH_LOG_ALLOW)
    os.listdir(m.path)
    acked = {}
    for name, n, seed in (("a1.bin", 3 * MIB + 1, 1), ("a2.bin", 20 * MIB + 7, 2)):
        acked[name] = rand(n, seed)
        write_file(m.path / name, acked[name])
    # a file whose upload fails for good: pending, staged in the cache directory
    fault = proxy.add("status", "put", key="pending.bin", times=None, status=503)
    pending = rand(500_000, 3)
    with pytest.raises(OSError) as ei:
        write_file(m.path / "pending.bin", pending)
    assert ei.value.errno == errno.EIO
    assert m.stats()["pending_uploads"] == 1

    big = rand(100 * MIB, 4)
    at_75 = threading.Event()

    def write_big(w: Writer):
        fd = os.open(m.path / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(big), MIB):
            os.write(fd, big[off:off + MIB])
            w.progress = off + MIB
            if w.progress == 40 * MIB:
                os.fsync(fd)
                w.ack("big.bin", big[:40 * MIB])
            if w.progress == 75 * MIB:  # the kill comes now, mid-write
                at_75.set()
                time.sleep(3)
        os.close(fd)
        w.ack("big.bin", big)

    w = Writer(write_big)
    w.start()
    assert at_75.wait(60), f"75 MiB not written: {w.error}"
    kill9(m)
    w.join(30)
    assert w.acked.get("big.bin") is not None, "the fsync at 40 MiB was not acknowledged"
    acked.update(w.acked)

    proxy.remove(fault)
    m.start()
    no_rebuild(m)
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "the pending upload")
    acked["pending.bin"] = pending
    check_acked(s3, bucket, m, acked)
    assert sorted(keys(s3, bucket)) == sorted(acked)
    assert_no_uploads_left(s3, bucket, proxy)


def test_kill9_during_a_burst_of_small_writes(mount, s3, bucket, proxy):
    m = mount(bucket, opts=opts_via(proxy), allow_log=CRASH_LOG_ALLOW)
    (m.path / "burst").mkdir()
    contents = {f"burst/f{i:04}": rand(random.Random(i).randint(0, 64 * 1024), 1000 + i)
                for i in range(2000)}

    def burst_part(w: Writer, k: int):
        for i, (name, data) in enumerate(contents.items()):
            if i % 3 != k:
                continue
            fd = os.open(m.path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            if i % 2 == 0:
                os.fsync(fd)
            os.close(fd)
            w.ack(name, data)
            w.progress += 1

    ws = [Writer(lambda w, k=k: burst_part(w, k)) for k in range(3)]
    for w in ws:
        w.start()
    wait_until(lambda: sum(w.progress for w in ws) >= 150, 60, "150 files written")
    kill9(m)
    for w in ws:
        w.join(30)
    acked = {k: v for w in ws for k, v in w.acked.items()}
    assert len(acked) >= 150
    m.start()
    no_rebuild(m)
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "pending uploads")
    check_acked(s3, bucket, m, acked, via_mount=False)
    # what else reached S3 is whole: a file's complete content, never a part of it
    extra = [k for k in keys(s3, bucket, "burst/") if k not in acked and k != "burst/"]
    for k in extra:
        assert s3_sha(s3, bucket, k) == (sha(contents[k]), len(contents[k])), \
            f"{k}: not acknowledged and not whole"
    assert len(extra) <= 10, f"{len(extra)} files in S3 that were never acknowledged"
    names = set(os.listdir(m.path / "burst"))
    assert {n.split("/")[1] for n in acked} <= names
    for name in random.Random(7).sample(sorted(acked), 30):
        assert file_sha(m.path / name) == (sha(acked[name]), len(acked[name])), name


@pytest.mark.parametrize("phase", ["copy", "delete_multi"])
def test_kill9_during_a_directory_rename(mount, s3, bucket, proxy, phase):
    """A directory rename copies every key, then deletes the old ones (README: not atomic).
    A crash in either phase loses nothing: each file is whole under the old name, the new
    one, or both."""
    files = {f"f{i:03}": rand(2000 + i, 2000 + i) for i in range(120)}
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda kv: s3.put_object(Bucket=bucket, Key=f"src/{kv[0]}", Body=kv[1]),
                    files.items()))
    m = mount(bucket, opts=opts_via(proxy), allow_log=CRASH_LOG_ALLOW)
    assert len(os.listdir(m.path / "src")) == len(files)
    if phase == "copy":
        proxy.add("delay", "copy", times=None, seconds=0.05)
    else:
        proxy.add("delay", ("delete_multi", "delete"), times=None, seconds=30)
    box = {}

    def mv():
        try:
            os.rename(m.path / "src", m.path / "dst")
            box["ok"] = True
        except OSError as e:
            box["err"] = e

    t = threading.Thread(target=mv, daemon=True)
    t.start()
    if phase == "copy":
        wait_until(lambda: proxy.count("copy") >= 40, 60, "40 copies")
    else:
        wait_until(lambda: proxy.count("delete_multi", "delete") >= 1, 60, "the delete")
    assert "ok" not in box, "the rename finished before the kill"
    kill9(m)
    t.join(30)
    # requests the proxy forwarded before the kill finish at the server first
    wait_until(lambda: all(e.done for e in list(proxy.exchanges)
                           if e.op in ("copy", "delete_multi", "delete")), 30,
               "the forwarded requests to finish")
    proxy.clear()
    # what S3 has: every file whole under the old name, the new one, or both
    in_s3 = {d: {k.split("/", 1)[1] for k in keys(s3, bucket, d + "/") if k != d + "/"}
             for d in ("src", "dst")}
    old, new = in_s3["src"], in_s3["dst"]
    assert old | new == set(files), f"lost in the crash: {sorted(set(files) - old - new)}"
    for name, data in files.items():
        for d in ("src", "dst"):
            if name in in_s3[d]:
                assert s3_sha(s3, bucket, f"{d}/{name}") == (sha(data), len(data)), \
                    f"{d}/{name}"
    # what the next mount shows: the same (its cache must not hold the tree from before
    # the rename as if nothing had happened)
    m.start()
    no_rebuild(m)
    shown = {}
    for d in ("src", "dst"):
        try:
            shown[d] = set(os.listdir(m.path / d))
        except FileNotFoundError:
            shown[d] = set()
    assert shown == in_s3, (
        f"after the crash the mount shows src/: {len(shown['src'])} files, dst/: "
        f"{len(shown['dst'])}; S3 has src/: {len(in_s3['src'])}, dst/: {len(in_s3['dst'])}")
    for d in ("src", "dst"):
        for name in sorted(shown[d])[:20]:
            assert (m.path / d / name).read_bytes() == files[name], f"{d}/{name}"
    print(f"after a kill in the {phase} phase: {len(old)} under src/, {len(new)} under dst/")


def test_kill9_mid_multipart_next_mount_cleans_up(mount, s3, bucket, proxy):
    """kill -9 while multipart uploads are in flight (a streamed one, written sequentially,
    and a whole one, sent at close): the next mount aborts what the crash left."""
    opts = opts_via(proxy, multipart_threshold=5 * MIB, part_size=5 * MIB)
    data = rand(24 * MIB, 50)
    s3.put_object(Bucket=bucket, Key="patched.bin", Body=data)
    m = mount(bucket, opts=opts, allow_log=CRASH_LOG_ALLOW)
    os.listdir(m.path)
    # parts hang: the kill finds them
    proxy.add("delay", ("part", "part_copy"), times=None, seconds=30)

    def streamed(w: Writer):
        fd = os.open(m.path / "streamed.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(data), MIB):
            os.write(fd, data[off:off + MIB])
            w.progress = off + MIB
        os.close(fd)

    def whole(w: Writer):
        fd = os.open(m.path / "whole.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(fd, data[12 * MIB:], 12 * MIB)   # out of order: no streaming
        os.pwrite(fd, data[:12 * MIB], 0)
        w.progress = 1
        os.close(fd)

    def patched(w: Writer):  # a small change: the other parts are copied server-side
        fd = os.open(m.path / "patched.bin", os.O_WRONLY)
        os.pwrite(fd, b"patch", 13 * MIB)
        w.progress = 1
        os.close(fd)

    ws = [Writer(streamed), Writer(whole), Writer(patched)]
    for w in ws:
        w.start()
    wait_until(lambda: len({u[0] for u in uploads(s3, bucket)}) == 3, 60,
               "the three multipart uploads created")
    time.sleep(0.5)
    kill9(m)
    for w in ws:
        w.join(30)
    left = uploads(s3, bucket)
    assert {k for k, _ in left} == {"streamed.bin", "whole.bin", "patched.bin"}
    proxy.clear()
    m.start()
    no_rebuild(m)
    deadline = time.monotonic() + 15
    while uploads(s3, bucket) and time.monotonic() < deadline:
        time.sleep(0.5)
    remaining = uploads(s3, bucket)
    assert s3_sha(s3, bucket, "patched.bin") == (sha(data), len(data))
    assert remaining == [], f"multipart uploads the crash left and the next mount kept: " \
                            f"{[k for k, _ in remaining]} (of {[k for k, _ in left]})"


def test_kill9_while_reading_fills_the_data_cache(mount, s3, bucket, proxy):
    """The disk data cache is filled while a big file is read; a kill -9 in the middle must
    not make the next mount serve wrong bytes from it."""
    data = rand(64 * MIB, 60)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    m = mount(bucket, opts=opts_via(proxy, read_part_size=4 * MIB), allow_log=CRASH_LOG_ALLOW)
    proxy.add("delay", "get", times=None, seconds=0.05)

    def reader(w: Writer):
        with open(m.path / "r.bin", "rb", buffering=0) as f:
            while True:
                b = f.read(MIB)
                if not b:
                    break
                w.progress += len(b)

    w = Writer(reader)
    w.start()
    wait_until(lambda: w.progress >= 30 * MIB or not w.is_alive(), 60, "30 MiB read")
    kill9(m)
    w.join(30)
    proxy.clear()
    m.start()
    no_rebuild(m)
    assert file_sha(m.path / "r.bin") == (sha(data), len(data))
    m.remount()  # and from the cache alone
    before = m.stats()["requests"]["get"]
    assert file_sha(m.path / "r.bin") == (sha(data), len(data))
    print(f"GETs for the second read: {m.stats()['requests']['get'] - before}")


# --- corrupt cache files ---------------------------------------------------------------------

def _fill(m, s3, bucket) -> dict[str, bytes]:
    files = {"a.txt": b"alpha" * 100, "d/b.bin": rand(300_000, 70)}
    (m.path / "d").mkdir()
    for name, data in files.items():
        write_file(m.path / name, data)
    os.listdir(m.path / "d")
    for name, data in files.items():
        assert (m.path / name).read_bytes() == data
    return files


@pytest.mark.parametrize("damage", ["garbage", "pages", "foreign", "truncated"])
def test_a_corrupt_metadata_cache_is_rebuilt_never_trusted(mount, s3, bucket, damage):
    m = mount(bucket, opts={"stat_ttl": 600})
    files = _fill(m, s3, bucket)
    m.unmount()
    # meanwhile another client changes a file: a trusted stale cache would hide it
    files["a.txt"] = b"changed by another client"
    s3.put_object(Bucket=bucket, Key="a.txt", Body=files["a.txt"])
    db = meta_db(m)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    size = db.stat().st_size
    if damage == "garbage":
        db.write_bytes(rand(size, 71))
    elif damage == "pages":  # a sound header, damaged pages after it
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(rand(size - 4096, 72))
    elif damage == "truncated":
        with open(db, "r+b") as f:
            f.truncate(size // 3)
    else:  # another application's SQLite file in its place
        db.unlink()
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, size INTEGER)")
        con.execute("INSERT INTO entries VALUES ('a.txt', 1)")
        con.commit()
        con.close()
        os.chmod(db, 0o600)
    m.start()
    assert REBUILT in m.run_log, f"no rebuild logged for a {damage} cache:\n{m.run_log}"
    assert sorted(os.listdir(m.path)) == ["a.txt", "d"]
    assert os.listdir(m.path / "d") == ["b.bin"]
    for name, data in files.items():
        assert os.stat(m.path / name).st_size == len(data), name
        assert (m.path / name).read_bytes() == data, name
    (m.path / "d" / "new.txt").write_bytes(b"new")
    assert s3_sha(s3, bucket, "d/new.txt") == (sha(b"new"), 3)
    m.allow = [*m.allow, REBUILT, r" warn: meta_cache: "]
    m.unmount()
    m.start()
    assert REBUILT not in m.run_log, "rebuilt again: the rebuilt cache was not sound"
    assert (m.path / "a.txt").read_bytes() == files["a.txt"]


def test_a_corrupt_data_cache_is_rebuilt_never_trusted(mount, s3, bucket):
    data = rand(6 * MIB, 80)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    m = mount(bucket, opts={"stat_ttl": 600})
    assert file_sha(m.path / "r.bin") == (sha(data), len(data))
    m.unmount()
    ddb = list(Path(m.cache_dir).glob("*/data/data.db"))
    assert len(ddb) == 1, ddb
    for extra in ("-wal", "-shm"):
        Path(str(ddb[0]) + extra).unlink(missing_ok=True)
    ddb[0].write_bytes(rand(ddb[0].stat().st_size, 81))
    m.start()
    assert "damaged or not ours" in m.run_log, f"no rebuild logged:\n{m.run_log}"
    assert file_sha(m.path / "r.bin") == (sha(data), len(data))
    assert m.stats()["requests"]["get"] > 0, "served from a cache that was rebuilt empty?"
    m.allow = [*m.allow, r" warn: datacache: "]
    m.unmount()
    m.start()  # the rebuilt cache is sound and used
    assert "damaged" not in m.run_log
    assert file_sha(m.path / "r.bin") == (sha(data), len(data))
    assert m.stats()["requests"]["get"] == 0, "the rebuilt data cache was not used"


# --- soak --------------------------------------------------------------------------------------

SOAK_SECONDS = float(os.environ.get("S3VFS_SOAK_SECONDS", "50"))

# A worker process. writer: creates, overwrites and deletes files under its own directory,
# one JSON line per finished operation ({"op", "name", "sha", "size", "ok"} on stdout, and
# to its manifest file, flushed). reader: reads files the writers marked final, checks their
# sha256, lists the directories; prints {"reads", "bad", "errors"} at the end.
WORKER = r'''
import hashlib, json, os, random, sys, time
role, root, me, seed, until = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
rng = random.Random(seed)
def emit(f, **kw):
    line = json.dumps(kw)
    print(line, flush=True)
    if f:
        f.write(line + "\n"); f.flush()
if role == "writer":
    d = os.path.join(root, me)
    os.makedirs(d, exist_ok=True)
    man = open(sys.argv[6], "a")
    live, n = [], 0
    while time.time() < until:
        r = rng.random()
        if live and r < 0.15:
            name = live.pop(rng.randrange(len(live)))
            try:
                os.unlink(os.path.join(d, name)); ok = "ok"
            except OSError as e:
                ok = "errno %d" % e.errno
            emit(man, op="unlink", name=me + "/" + name, ok=ok)
            continue
        if live and r < 0.35:
            name = rng.choice(live)
        else:
            name = "f%05d" % n; n += 1
        size = rng.choice([0, 1, 100, 4096, 65536, 300000, 1 << 20, 3 << 20, 7 << 20])
        data = rng.randbytes(size)
        ok = "ok"
        try:
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for i in range(0, len(data), 1 << 20):
                    os.write(fd, data[i:i + (1 << 20)])
                if rng.random() < 0.3:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            ok = "errno %d" % e.errno
        if name not in live:
            live.append(name)
        final = rng.random() < 0.5
        emit(man, op="write", name=me + "/" + name, sha=hashlib.sha256(data).hexdigest(),
             size=size, ok=ok, final=final)
        if final:
            live.remove(name)   # never touched again: readers may check it
else:
    mans = sys.argv[6:]
    reads = bad = errors = 0
    badlist = []
    while time.time() < until:
        final = {}
        for m in mans:
            try:
                for ln in open(m):
                    try:
                        e = json.loads(ln)
                    except ValueError:
                        continue
                    if e["op"] == "write" and e.get("final") and e["ok"] == "ok":
                        final[e["name"]] = e
            except OSError:
                pass
        if not final:
            time.sleep(0.2); continue
        name = rng.choice(sorted(final))
        e = final[name]
        try:
            if rng.random() < 0.2:
                os.listdir(os.path.join(root, name.split("/")[0]))
            h = hashlib.sha256(); n = 0
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while True:
                    b = f.read(1 << 20)
                    if not b: break
                    h.update(b); n += len(b)
                # drop the file's pages: the next read of it goes to the mount again
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            reads += 1
            if h.hexdigest() != e["sha"] or n != e["size"]:
                bad += 1; badlist.append([name, n, e["size"]])
        except OSError as ex:
            errors += 1
    print(json.dumps({"reads": reads, "bad": bad, "badlist": badlist[:20], "errors": errors}), flush=True)
'''


def test_soak_writers_and_readers_with_intermittent_faults(mount, s3, bucket, proxy,
                                                           tmp_path):
    m = mount(bucket, opts=opts_via(proxy, multipart_threshold=5 * MIB, part_size=5 * MIB,
                                    unmount_timeout=60, cache_size=0),
              allow_log=CRASH_LOG_ALLOW)
    os.listdir(m.path)
    until = time.time() + SOAK_SECONDS
    writers, readers, mans = [], [], []
    for k in range(3):
        man = tmp_path / f"w{k}.jsonl"
        mans.append(man)
        writers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, "writer", str(m.path), f"w{k}", str(k), str(until),
             str(man)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for k in range(2):
        readers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, "reader", str(m.path), f"r{k}", str(100 + k),
             str(until), *map(str, mans)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))

    # chaos: a fault every 0.5-2 s, of a random kind on a random operation
    rng = random.Random(99)
    kinds = [("status", dict(status=503, code="SlowDown")),
             ("status", dict(status=500, code="InternalError")),
             ("status", dict(status=429, code="TooManyRequests")),
             ("reset", dict(fraction=0.5)), ("truncate", dict(fraction=0.5)),
             ("reset_request", dict(fraction=0.5)), ("drop", {}),
             ("delay", dict(seconds=1.0))]
    ops = ["get", "head", "list", "put", "part", "mpu_create", "mpu_complete", "delete",
           "copy"]
    outages = 0
    while time.time() < until - 3:
        action, kw = rng.choice(kinds)
        op = rng.choice(ops)
        if action in ("truncate", "reset") and op in ("put", "part", "delete", "head"):
            action, kw = "drop", {}
        if action == "reset_request" and op not in ("put", "part"):
            action, kw = "reset", dict(fraction=0.5)
        proxy.add(action, op, times=rng.randint(1, 3), **kw)
        if rng.random() < 0.05:  # now and then a short outage
            proxy.refuse()
            time.sleep(0.3)
            proxy.accept()
            outages += 1
        time.sleep(rng.uniform(0.5, 2.0))
    proxy.clear()
    outs = []
    for p in writers + readers:
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            pytest.fail(f"a worker did not finish: {err[-2000:]}")
        assert p.returncode == 0, err[-3000:]
        outs.append(out)
    injected = proxy.injected() + outages

    # what each file must be: its last write (whatever close() said), or gone
    expect: dict[str, tuple[str, int] | None] = {}
    eio, failed = 0, []
    for out in outs[:len(writers)]:
        for ln in out.splitlines():
            e = json.loads(ln)
            if e["op"] == "write":
                expect[e["name"]] = (e["sha"], e["size"])
                eio += e["ok"] != "ok"
            elif e["ok"] == "ok":
                expect[e["name"]] = None
            if e["ok"] != "ok":
                failed.append(f"{e['op']} {e['name']}: {e['ok']}")
    reader_stats = [json.loads(out.splitlines()[-1]) for out in outs[len(writers):]]
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 90, "pending uploads after the soak")
    with ThreadPoolExecutor(8) as ex:
        got = dict(zip(expect, ex.map(lambda n: s3_sha(s3, bucket, n), expect)))
    wrong = {n: (got[n], want) for n, want in expect.items() if got[n] != want}
    print(f"soak: {len(expect)} files, {sum(v is not None for v in expect.values())} kept, "
          f"{eio} writes with a failed close, faults injected {injected} "
          f"{dict(proxy.actions)}, readers {reader_stats}, failed calls {failed}")
    assert not wrong, f"{len(wrong)} files differ from their last write: " \
                      f"{dict(list(wrong.items())[:10])}"
    assert all(r["bad"] == 0 for r in reader_stats), f"readers saw wrong bytes: {reader_stats}"
    assert sum(r["reads"] for r in reader_stats) > 20, reader_stats
    present = {k for k in keys(s3, bucket) if not k.endswith("/")}  # not the dir markers
    want_present = {k for k, v in expect.items() if v is not None}
    assert present - want_present == set(), f"unexpected objects: {present - want_present}"
    # a fresh look through the mount
    m.remount()
    for name, want in random.Random(5).sample(sorted(expect.items()), min(40, len(expect))):
        if want is None:
            assert not (m.path / name).exists(), name
        else:
            assert file_sha(m.path / name) == want, name
    # and no multipart upload left in progress
    deadline = time.monotonic() + 10
    while uploads(s3, bucket) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = uploads(s3, bucket)
    faults_on = {k: [e for e in proxy.exchanges if e.key == k and e.action != "forward"]
                 for k, _ in left}
    assert not left, f"multipart uploads left in progress: {left}; the faults their keys " \
                     f"met: {faults_on}"
