# SPDX-License-Identifier: MIT
"""Event-stream directories ("events chains") on real s3vfs mounts: RGW for the changesets,
DynamoDB Local for the head, boto3 (chainutil.py) as the referee.

A directory marked with the xattr user.s3vfs.chain=events is an append-only stream: a file
created in it under a plain name is committed at close() as an immutable changeset at the next
version and shows up as "%08d-<name>"; a name with an explicit version ("00000005-paid.json")
commits only at exactly that version (EEXIST if taken, EINVAL if the stream is behind). The
head (version, id) lives in DynamoDB and moves only by conditional write; the changesets are
S3 objects DIR/.s3vfs/cs/<version:020>-<id>-<parent id>-<commit ms>-<name>. The tests check
each promise through the mount, then against S3 and DynamoDB directly (following the chain
back from the head through the parent ids), often again through another mount.

The lost-response test puts faultproxy.FaultProxy in front of DynamoDB Local; the large cold
listing builds its 5,000-changeset stream with boto3 (chainutil.build_stream), not a mount.
Request counts come from the mount's statistics xattr; no assertion is about time.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import chainutil as cu
from faultproxy import FaultProxy

CHAIN = "user.s3vfs.chain"
SUBDIRS = "user.s3vfs.chain.subdirs"
TTL = 1  # stat_ttl of the mounts: what another mount does is seen this late at most
from robustutil import make_watchdog_fixture  # noqa: E402

TEST_TIMEOUT = 170.0  # seconds a test may take before its mounts are killed


from chainutil import umask_022  # noqa: E402,F401 (autouse)


# s3vfs_mount with a watchdog: a hung mount fails the test instead of hanging it.
mount = make_watchdog_fixture(TEST_TIMEOUT)


chain_opts = cu.chain_opts_fixture(TTL)


# --- helpers ---------------------------------------------------------------------------------

raises_errno = cu.raises_errno


def append(path, data: bytes, pieces: int = 1) -> None:
    """Create path, write data (in `pieces` writes), close: the commit. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        step = max(1, -(-len(data) // pieces))
        for i in range(0, len(data), step):
            assert os.write(fd, data[i:i + step]) == len(data[i:i + step])
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    os.close(fd)


def try_append(path, data: bytes) -> tuple[str, int]:
    """append(), reporting where it failed: ("ok", 0) or ("open"|"write"|"close", errno)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        return "open", e.errno
    try:
        os.write(fd, data)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.close(fd)
        return "write", e.errno
    try:
        os.close(fd)
    except OSError as e:
        return "close", e.errno
    return "ok", 0


def ename(code: int) -> str:
    return errno.errorcode.get(code, str(code)) if code else "0"


def head_file(d) -> bytes:
    with open(os.path.join(d, ".head"), "rb") as f:
        return f.read()


def head_bytes(version: int, id_: str) -> bytes:
    return f'{{"version":{version},"id":"{id_}"}}\n'.encode()


def s3_meta(s3, bucket, key) -> dict:
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"]


def s3_exists(s3, bucket, key) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def requests(m) -> dict[str, int]:
    return dict(m.stats()["requests"])


def delta(m, before: dict[str, int]) -> dict[str, int]:
    after = requests(m)
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def wait_until(cond, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s", pytrace=False)
        time.sleep(interval)


def check_view_matches_chain(view: list[str], state: cu.ChainState) -> None:
    want = [c.view_name for c in state.chain]
    assert view == want, (f"the mount's listing differs from the chain in S3+DynamoDB "
                          f"(head {state.head}, orphans {[c.key for c in state.orphans]}):\n"
                          f"mount: {view[:10]}...{view[-5:]} ({len(view)})\n"
                          f"chain: {want[:10]}...{want[-5:]} ({len(want)})")


def list_pages(s3, bucket: str, prefix: str) -> int:
    """How many LIST pages (of at most 1000 keys) one pass over prefix takes."""
    return sum(1 for _ in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}))


def log_lines(m, *needles: str) -> list[str]:
    return [ln for ln in m.log.splitlines() if any(n in ln for n in needles)]


# --- 1. marking, append, read, list, .head, stat ---------------------------------------------

def test_mark_append_read_list_head_and_stat(mount, chain_opts, s3, ddb, bucket,
                                             ddb_table_name):
    m = mount(bucket, opts=chain_opts())
    early = mount(bucket, opts=chain_opts())  # sees the directory before it is marked
    d = m.path / "stream"
    os.mkdir(d)
    assert os.listdir(early.path / "stream") == []
    os.setxattr(d, CHAIN, b"events")
    assert os.getxattr(d, CHAIN) == b"events"
    os.setxattr(d, CHAIN, b"events")  # the same value again: no error
    assert s3_meta(s3, bucket, "stream/").get("s3vfs-chain") == "events"
    assert s3_exists(s3, bucket, "stream/.s3vfs/chain")
    assert os.listdir(d) == []
    assert head_file(d) == b'{"version":0,"id":""}\n'

    # what cannot be marked, and what cannot be undone
    os.mkdir(m.path / "other")
    with raises_errno(errno.ENODATA):
        os.getxattr(m.path / "other", CHAIN)  # a plain directory has no such attribute
    with raises_errno(errno.EINVAL):
        os.setxattr(m.path / "other", CHAIN, b"bogus")
    with raises_errno(errno.EINVAL):
        os.setxattr(d, CHAIN, b"bogus")
    assert "s3vfs-chain" not in s3_meta(s3, bucket, "other/")
    os.mkdir(m.path / "full")
    (m.path / "full" / "f.txt").write_bytes(b"a file")
    with raises_errno(errno.ENOTEMPTY):
        os.setxattr(m.path / "full", CHAIN, b"events")
    assert "s3vfs-chain" not in s3_meta(s3, bucket, "full/")
    assert os.listdir(m.path / "full") == ["f.txt"]  # still a plain directory
    with raises_errno(errno.EPERM):
        os.setxattr(m.path, CHAIN, b"events")
    with raises_errno(errno.EPERM):
        os.removexattr(d, CHAIN)
    assert os.getxattr(d, CHAIN) == b"events"
    assert s3_meta(s3, bucket, "stream/").get("s3vfs-chain") == "events"

    # the first append
    b1 = b'{"event":"item-added","sku":"A-1"}\n'
    t0 = time.time()
    append(d / "item-added.json", b1)
    t1 = time.time()
    assert os.listdir(d) == ["00000001-item-added.json"]
    with raises_errno(errno.ENOENT):
        os.stat(d / "item-added.json")
    assert (d / "00000001-item-added.json").read_bytes() == b1
    st1 = os.stat(d / "00000001-item-added.json")
    assert st1.st_mode == stat.S_IFREG | 0o444, oct(st1.st_mode)
    assert st1.st_size == len(b1)
    assert t0 - 2 <= st1.st_mtime <= t1 + 2, (t0, st1.st_mtime, t1)

    # the second: larger, written in several pieces
    b2 = b"".join(b'{"event":"item-removed","n":%d}\n' % i for i in range(5000))
    append(d / "item-removed.json", b2, pieces=7)
    listing = ["00000001-item-added.json", "00000002-item-removed.json"]
    assert os.listdir(d) == listing
    assert (d / listing[1]).read_bytes() == b2
    assert os.stat(d / listing[1]).st_size == len(b2)
    t2 = time.time()

    # S3 and DynamoDB: the chain, its objects and the head
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "stream")
    check_view_matches_chain(os.listdir(d), state)
    assert state.orphans == [] and state.junk == [], (state.orphans, state.junk)
    assert state.head["version"] == 2 and state.head["id"] == state.chain[-1].id, state.head
    assert state.head["updated"] is not None
    assert (t0 - 2) * 1000 <= state.head["updated"] <= (t2 + 2) * 1000, (t0, state.head, t2)
    assert head_file(d) == head_bytes(2, state.chain[-1].id)
    for c, data in zip(state.chain, (b1, b2)):
        r = s3.get_object(Bucket=bucket, Key=c.key)
        assert r["Body"].read() == data, c.key
        md = r["Metadata"]
        assert int(md["s3vfs-version"]) == c.version, (c.key, md)
        assert (md["s3vfs-id"], md["s3vfs-parent"], md["s3vfs-name"]) == \
            (c.id, c.parent, c.name), (c.key, md)
    assert state.chain[0].parent == cu.ZERO_ID
    assert state.chain[0].name == "item-added.json"
    assert abs(st1.st_mtime - state.chain[0].ms / 1000) < 1.0, (st1.st_mtime, state.chain[0])

    # another mount sees all of it: a fresh one at once, the one that had seen the plain
    # directory within stat_ttl
    m2 = mount(bucket, opts=chain_opts())
    for mnt in (m2, early):
        d2 = mnt.path / "stream"
        wait_until(lambda: os.listdir(d2) == listing, TTL + 5, f"the stream listed via {mnt}")
        assert os.getxattr(d2, CHAIN) == b"events"
        assert (d2 / listing[0]).read_bytes() == b1
        assert (d2 / listing[1]).read_bytes() == b2
        assert head_file(d2) == head_bytes(2, state.chain[-1].id)
        st = os.stat(d2 / listing[0])
        assert (st.st_mode, st.st_size) == (stat.S_IFREG | 0o444, len(b1))
        assert abs(st.st_mtime - st1.st_mtime) < 1.0
    # and what the early mount appends is a changeset too
    append(early.path / "stream" / "third.json", b"3\n")
    assert os.listdir(early.path / "stream") == listing + ["00000003-third.json"]
    assert cu.ddb_head(ddb, ddb_table_name, bucket, "stream")["version"] == 3


def test_subdirs_marking_and_polling_between_mounts(mount, chain_opts, s3, ddb, bucket,
                                                    ddb_table_name):
    m1 = mount(bucket, opts=chain_opts())
    m2 = mount(bucket, opts=chain_opts())
    os.mkdir(m1.path / "feeds")
    assert os.listdir(m2.path / "feeds") == []  # m2 has seen feeds before it is marked
    os.setxattr(m1.path / "feeds", SUBDIRS, b"events")

    # a subdirectory made through the marking mount is a stream
    a1 = m1.path / "feeds" / "a"
    os.mkdir(a1)
    assert os.getxattr(a1, CHAIN) == b"events"
    assert s3_meta(s3, bucket, "feeds/a/").get("s3vfs-chain") == "events"
    assert s3_exists(s3, bucket, "feeds/a/.s3vfs/chain")
    append(a1 / "x.json", b"x1\n")
    assert os.listdir(a1) == ["00000001-x.json"]

    # ... and one made through the other mount, after stat_ttl
    time.sleep(TTL + 0.5)
    b2 = m2.path / "feeds" / "b"
    os.mkdir(b2)
    assert os.getxattr(b2, CHAIN) == b"events"
    assert s3_meta(s3, bucket, "feeds/b/").get("s3vfs-chain") == "events"
    assert s3_exists(s3, bucket, "feeds/b/.s3vfs/chain")
    append(b2 / "y.json", b"y1\n")
    assert os.listdir(b2) == ["00000001-y.json"]
    wait_until(lambda: os.listdir(m1.path / "feeds" / "b") == ["00000001-y.json"], TTL + 5,
               "the stream made by m2 listed through m1")
    assert os.getxattr(m1.path / "feeds" / "b", CHAIN) == b"events"

    # feeds itself stays a plain directory
    (m1.path / "feeds" / "plain.txt").write_bytes(b"plain")
    assert sorted(os.listdir(m1.path / "feeds")) == ["a", "b", "plain.txt"]
    assert s3.get_object(Bucket=bucket, Key="feeds/plain.txt")["Body"].read() == b"plain"

    # a file being written is not committed before its close: nothing new anywhere
    a2 = m2.path / "feeds" / "a"
    assert os.listdir(a2) == ["00000001-x.json"]
    fd = os.open(a1 / "pending.json", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"pending, part 1\n")
        time.sleep(TTL + 0.5)
        os.write(fd, b"pending, part 2\n")
        assert os.listdir(a2) == ["00000001-x.json"]
        assert head_file(a2) == head_bytes(1, cu.ddb_head(ddb, ddb_table_name, bucket,
                                                           "feeds/a")["id"])
        assert cu.ddb_head(ddb, ddb_table_name, bucket, "feeds/a")["version"] == 1
        assert len(cu.list_keys(s3, bucket, cu.cs_prefix("feeds/a"))) == 1
    finally:
        os.close(fd)

    # polling: what m1 appends shows up in m2's listing within stat_ttl, and the other way
    append(a1 / "x.json", b"x3\n")
    append(a1 / "z.json", b"z4\n")
    want = ["00000001-x.json", "00000002-pending.json", "00000003-x.json", "00000004-z.json"]
    assert os.listdir(a1) == want
    wait_until(lambda: os.listdir(a2) == want, TTL + 5, "m1's appends listed through m2")
    assert (a2 / "00000002-pending.json").read_bytes() == b"pending, part 1\npending, part 2\n"
    assert (a2 / "00000004-z.json").read_bytes() == b"z4\n"
    assert (a2 / "00000003-x.json").read_bytes() == b"x3\n"
    append(a2 / "w.json", b"w5\n")  # m2 appends on top of what m1 wrote
    want.append("00000005-w.json")
    assert os.listdir(a2) == want
    wait_until(lambda: os.listdir(a1) == want, TTL + 5, "m2's append listed through m1")
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "feeds/a")
    check_view_matches_chain(want, state)
    assert head_file(a1) == head_bytes(5, state.chain[-1].id)


# --- 2. immutability -------------------------------------------------------------------------

def test_changesets_are_immutable_and_rmdir_rules(mount, chain_opts, s3, ddb, bucket,
                                                  ddb_table_name):
    m = mount(bucket, opts=chain_opts())
    d = m.path / "imm"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    append(d / "a.json", b"original\n")
    cs = d / "00000001-a.json"
    assert os.listdir(d) == [cs.name]

    flags = {"O_WRONLY": os.O_WRONLY, "O_RDWR": os.O_RDWR,
             "O_WRONLY|O_APPEND": os.O_WRONLY | os.O_APPEND,
             "O_RDWR|O_APPEND": os.O_RDWR | os.O_APPEND,
             "O_WRONLY|O_TRUNC": os.O_WRONLY | os.O_TRUNC,
             "O_RDWR|O_TRUNC": os.O_RDWR | os.O_TRUNC,
             "O_RDONLY|O_TRUNC": os.O_RDONLY | os.O_TRUNC,
             "O_WRONLY|O_CREAT": os.O_WRONLY | os.O_CREAT}
    got = {}
    for what, fl in flags.items():
        try:
            fd = os.open(cs, fl, 0o644)
        except OSError as e:
            got[what] = ename(e.errno)
        else:
            os.close(fd)
            got[what] = "opened"
    assert got == {k: "EPERM" for k in flags}, got

    fd = os.open(cs, os.O_RDONLY)  # reading is fine
    try:
        assert os.read(fd, 100) == b"original\n"
    finally:
        os.close(fd)

    ops = {
        "truncate 0": lambda: os.truncate(cs, 0),
        "truncate 100": lambda: os.truncate(cs, 100),
        "unlink": lambda: os.unlink(cs),
        "rename within the stream": lambda: os.rename(cs, d / "00000002-a.json"),
        "rename out of the stream": lambda: os.rename(cs, m.path / "out.json"),
        "chmod": lambda: os.chmod(cs, 0o644),
        "mkdir in the stream": lambda: os.mkdir(d / "sub"),
        "create .hidden": lambda: os.close(os.open(d / ".hidden", os.O_WRONLY | os.O_CREAT,
                                                   0o644)),
        "create .dot.json": lambda: os.close(os.open(d / ".dot.json", os.O_WRONLY | os.O_CREAT,
                                                 0o644)),
    }
    got = {}
    for what, fn in ops.items():
        try:
            fn()
            got[what] = "succeeded"
        except OSError as e:
            got[what] = ename(e.errno)
    assert got == {k: "EPERM" for k in ops}, got

    # nothing changed: the view, the content, the mode, S3 and DynamoDB
    assert os.listdir(d) == [cs.name]
    assert cs.read_bytes() == b"original\n"
    assert os.stat(cs).st_mode == stat.S_IFREG | 0o444
    assert not os.path.exists(m.path / "out.json")
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "imm")
    check_view_matches_chain([cs.name], state)
    assert s3.get_object(Bucket=bucket, Key=state.chain[0].key)["Body"].read() == b"original\n"
    assert [k for k in cu.list_keys(s3, bucket, "imm/") if "hidden" in k or "sub" in k
            or "dot" in k] == []
    assert not s3_exists(s3, bucket, "out.json")

    # rmdir: a stream with changesets is not empty; an empty stream (version 0) goes away
    with raises_errno(errno.ENOTEMPTY):
        os.rmdir(d)
    assert os.listdir(d) == [cs.name]
    e = m.path / "empty"
    os.mkdir(e)
    os.setxattr(e, CHAIN, b"events")
    os.rmdir(e)
    assert not os.path.exists(e)
    assert "empty" not in os.listdir(m.path)
    assert cu.list_keys(s3, bucket, "empty/") == [], "rmdir left objects behind"
    m2 = mount(bucket, opts=chain_opts())
    assert sorted(os.listdir(m2.path)) == ["imm"]
    # the name is free again, for a plain directory
    os.mkdir(e)
    (e / "plain.txt").write_bytes(b"p")
    assert os.listdir(e) == ["plain.txt"]


# --- 3. two mounts appending at once ---------------------------------------------------------

N_PER_MOUNT = 200


def content_of(name: str) -> bytes:
    return json.dumps({"name": name, "pad": "x" * (len(name) * 3)}).encode() + b"\n"


def test_two_mounts_append_200_each_concurrently(mount, chain_opts, s3, ddb, bucket,
                                                 ddb_table_name, rgw_server):
    writers = [mount(bucket, opts=chain_opts()), mount(bucket, opts=chain_opts())]
    os.mkdir(writers[0].path / "stream")
    os.setxattr(writers[0].path / "stream", CHAIN, b"events")
    for w in writers:
        assert os.getxattr(w.path / "stream", CHAIN) == b"events"

    errors: list[str] = []
    done = [0, 0]
    barrier = threading.Barrier(2)

    def writer(k: int) -> None:
        d = writers[k].path / "stream"
        try:
            barrier.wait(timeout=30)
            for i in range(N_PER_MOUNT):
                name = f"m{k}-{i:03d}.json"
                append(d / name, content_of(name))
                done[k] += 1
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(f"mount {k} at append {done[k]}: {e!r}")

    threads = [threading.Thread(target=writer, args=(k,), name=f"writer{k}") for k in (0, 1)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TEST_TIMEOUT - 40)
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), f"writers still running: done {done}"
    stats = [w.stats() for w in writers]
    rate = sum(done) / elapsed
    print(f"\n{sum(done)} appends by two mounts in {elapsed:.1f}s: {rate:.1f} appends/s; "
          f"chain_commits {[s['chain_commits'] for s in stats]}, chain_conflicts "
          f"{[s['chain_conflicts'] for s in stats]}, requests "
          f"{[{k: v for k, v in s['requests'].items() if v} for s in stats]}")
    assert errors == [], errors
    assert done == [N_PER_MOUNT, N_PER_MOUNT]
    assert [s["chain_commits"] for s in stats] == [N_PER_MOUNT, N_PER_MOUNT]

    # the referee: S3 + DynamoDB, the chain followed back from the head
    total = 2 * N_PER_MOUNT
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "stream")
    print(f"orphan changeset objects: {len(state.orphans)}; junk keys: {state.junk}")
    assert state.head["version"] == total, state.head
    assert [c.version for c in state.chain] == list(range(1, total + 1))
    names = [c.name for c in state.chain]
    written = {f"m{k}-{i:03d}.json" for k in (0, 1) for i in range(N_PER_MOUNT)}
    assert len(names) == len(set(names)), "a name was committed twice: " + \
        str(sorted(n for n in set(names) if names.count(n) > 1))
    assert set(names) == written
    for k in (0, 1):  # each writer's appends are in its own order on the chain
        mine = [n for n in names if n.startswith(f"m{k}-")]
        assert mine == sorted(mine), f"mount {k}'s appends are out of order"
    for prev, cur in zip(state.chain, state.chain[1:]):
        assert cur.parent == prev.id, (prev, cur)
    assert state.chain[0].parent == cu.ZERO_ID
    c3 = rgw_server.client(max_pool_connections=16)

    def check_object(c: cu.Changeset) -> str | None:
        r = c3.get_object(Bucket=bucket, Key=c.key)
        md, data = r["Metadata"], r["Body"].read()
        if data != content_of(c.name):
            return f"{c.key}: content {data[:60]!r}"
        if (md.get("s3vfs-version", "").lstrip("0"), md.get("s3vfs-id"), md.get("s3vfs-parent"),
                md.get("s3vfs-name")) != (str(c.version), c.id, c.parent, c.name):
            return f"{c.key}: metadata {md}"
        return None

    with ThreadPoolExecutor(16) as ex:
        bad = [r for r in ex.map(check_object, state.chain) if r]
    assert bad == [], bad[:10]

    # a third, fresh mount shows exactly the chain, with the contents
    r = mount(bucket, opts=chain_opts())
    d = r.path / "stream"
    view = os.listdir(d)
    check_view_matches_chain(view, state)
    assert head_file(d) == head_bytes(total, state.head["id"])
    bad = [n for n in view if (d / n).read_bytes() != content_of(n.split("-", 1)[1])]
    assert bad == [], bad[:10]
    # and the writers, once stat_ttl has passed, show the same
    time.sleep(TTL + 0.5)
    for w in writers:
        check_view_matches_chain(os.listdir(w.path / "stream"), state)


def test_threads_of_one_mount_append_concurrently(mount, chain_opts, s3, ddb, bucket,
                                                 ddb_table_name):
    m = mount(bucket, opts=chain_opts())
    d = m.path / "busy"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    n_threads, n_each = 4, 25
    errors: list[str] = []
    barrier = threading.Barrier(n_threads)

    def writer(k: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(n_each):
                name = f"t{k}-{i:02d}.json"
                append(d / name, content_of(name))
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(f"thread {k}: {e!r}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "writers still running"
    assert errors == [], errors
    total = n_threads * n_each
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "busy")
    assert [c.version for c in state.chain] == list(range(1, total + 1)), state.head
    assert sorted(c.name for c in state.chain) == \
        sorted(f"t{k}-{i:02d}.json" for k in range(n_threads) for i in range(n_each))
    view = os.listdir(d)
    check_view_matches_chain(view, state)
    assert m.stats()["chain_commits"] == total
    bad = [n for n in view if (d / n).read_bytes() != content_of(n.split("-", 1)[1])]
    assert bad == [], bad[:10]


def test_stream_under_a_mount_prefix(mount, chain_opts, s3, ddb, bucket, ddb_table_name):
    """The DIR key (and so the head's pk and the changeset keys) is the S3 key, mount prefix
    included: a mount of bucket:/pre/fix and a mount of the whole bucket share the stream."""
    m = mount(bucket, prefix="pre/fix", opts=chain_opts())
    os.mkdir(m.path / "s")
    os.setxattr(m.path / "s", CHAIN, b"events")
    append(m.path / "s" / "a.json", b"a\n")
    assert os.listdir(m.path / "s") == ["00000001-a.json"]
    assert s3_meta(s3, bucket, "pre/fix/s/").get("s3vfs-chain") == "events"
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "pre/fix/s")
    check_view_matches_chain(["00000001-a.json"], state)
    item = ddb.get_item(TableName=ddb_table_name, ConsistentRead=True,
                        Key={"pk": {"S": f"{bucket}/pre/fix/s/"}}).get("Item")
    assert item and item["version"]["N"] == "1", item
    whole = mount(bucket, opts=chain_opts())
    ws = whole.path / "pre" / "fix" / "s"
    assert os.getxattr(ws, CHAIN) == b"events"
    assert os.listdir(ws) == ["00000001-a.json"]
    append(ws / "b.json", b"b\n")
    want = ["00000001-a.json", "00000002-b.json"]
    assert os.listdir(ws) == want
    wait_until(lambda: os.listdir(m.path / "s") == want, TTL + 5,
               "the append of the whole-bucket mount listed through the prefix mount")
    assert (m.path / "s" / "00000002-b.json").read_bytes() == b"b\n"


MIB = 1024 * 1024


def test_large_changeset_through_multipart(mount, chain_opts, s3, ddb, bucket, ddb_table_name):
    m = mount(bucket, opts=chain_opts(multipart_threshold=5 * MIB, part_size=5 * MIB))
    d = m.path / "big"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    data = os.urandom(12 * MIB + 7)
    fd = os.open(d / "blob.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for i in range(0, len(data), 64 * 1024):
            os.write(fd, data[i:i + 64 * 1024])
    finally:
        os.close(fd)
    assert os.listdir(d) == ["00000001-blob.bin"]
    assert os.stat(d / "00000001-blob.bin").st_size == len(data)
    assert (d / "00000001-blob.bin").read_bytes() == data
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "big")
    check_view_matches_chain(["00000001-blob.bin"], state)
    assert s3.get_object(Bucket=bucket, Key=state.chain[0].key)["Body"].read() == data
    assert [k for k in cu.list_keys(s3, bucket, "big/") if ".s3vfs/" not in k] == ["big/"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    r = mount(bucket, opts=chain_opts())
    assert (r.path / "big" / "00000001-blob.bin").read_bytes() == data


# --- 4. explicit versions: conflicts and gaps ------------------------------------------------

def test_explicit_version_conflict_and_gap(mount, chain_opts, s3, ddb, bucket, ddb_table_name):
    a = mount(bucket, opts=chain_opts())
    b = mount(bucket, opts=chain_opts())
    os.mkdir(a.path / "race")
    os.setxattr(a.path / "race", CHAIN, b"events")
    append(a.path / "race" / "first.json", b"first\n")
    wait_until(lambda: os.listdir(b.path / "race") == ["00000001-first.json"], TTL + 5,
               "the first changeset listed through b")

    # both create 00000002-x.json and close at the same moment: one commits, one gets EEXIST
    data = {"a": b"from a\n", "b": b"from b, longer\n"}
    results: dict[str, tuple[str, int]] = {}
    barrier = threading.Barrier(2)

    def racer(tag: str, mnt) -> None:
        p = mnt.path / "race" / "00000002-x.json"
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            results[tag] = ("open", e.errno)
            barrier.wait(timeout=30)
            return
        try:
            os.write(fd, data[tag])
        except OSError as e:
            results[tag] = ("write", e.errno)
        barrier.wait(timeout=30)
        try:
            os.close(fd)
        except OSError as e:
            results.setdefault(tag, ("close", e.errno))
            return
        results.setdefault(tag, ("ok", 0))

    threads = [threading.Thread(target=racer, args=(t, mm)) for t, mm in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), f"a racer hangs: {results}"
    shown = {k: (st, ename(e)) for k, (st, e) in results.items()}
    winners = [k for k, (st, _) in results.items() if st == "ok"]
    assert len(winners) == 1, f"want exactly one commit of version 2: {shown}"
    winner = winners[0]
    loser = "b" if winner == "a" else "a"
    assert results[loser][1] == errno.EEXIST and results[loser][0] in ("open", "close"), shown
    mounts = {"a": a, "b": b}

    # nothing of the loser's is on the chain or in any view
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "race")
    assert state.head["version"] == 2, state.head
    assert [c.view_name for c in state.chain] == ["00000001-first.json", "00000002-x.json"]
    assert s3.get_object(Bucket=bucket, Key=state.chain[1].key)["Body"].read() == data[winner]
    time.sleep(TTL + 0.5)
    for tag, mnt in mounts.items():
        d = mnt.path / "race"
        check_view_matches_chain(os.listdir(d), state)
        assert (d / "00000002-x.json").read_bytes() == data[winner], f"through {tag}"
        assert os.stat(d / "00000002-x.json").st_size == len(data[winner]), f"through {tag}"
        assert head_file(d) == head_bytes(2, state.chain[1].id), f"through {tag}"
    assert mounts[loser].stats()["chain_conflicts"] >= 1

    # the loser retries at the next version and succeeds
    lp = mounts[loser].path / "race"
    append(lp / "00000003-x.json", data[loser])
    want = ["00000001-first.json", "00000002-x.json", "00000003-x.json"]
    assert os.listdir(lp) == want
    assert (lp / "00000003-x.json").read_bytes() == data[loser]
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "race")
    check_view_matches_chain(want, state)

    # a taken version, known to the mount: EEXIST; a gap: EINVAL; nothing is committed
    for name in ("00000002-again.json", "00000003-again.json", "00000001-again.json"):
        st, e = try_append(lp / name, b"again\n")
        assert (st, ename(e)) in (("open", "EEXIST"), ("close", "EEXIST")), (name, st, ename(e))
    for name in ("00000009-gap.json", "00000005-gap.json"):
        st, e = try_append(lp / name, b"gap\n")
        assert (st, ename(e)) in (("open", "EINVAL"), ("close", "EINVAL")), (name, st, ename(e))
    # the same through the winner, once it has seen version 3
    wp = mounts[winner].path / "race"
    wait_until(lambda: os.listdir(wp) == want, TTL + 5, "version 3 listed through the winner")
    st, e = try_append(wp / "00000003-late.json", b"late\n")
    assert (st, ename(e)) in (("open", "EEXIST"), ("close", "EEXIST")), (st, ename(e))
    st, e = try_append(wp / "00000006-gap.json", b"gap\n")
    assert (st, ename(e)) in (("open", "EINVAL"), ("close", "EINVAL")), (st, ename(e))
    state2 = cu.read_chain(s3, ddb, ddb_table_name, bucket, "race")
    assert state2.chain == state.chain and state2.head["version"] == 3, state2.head
    for d in (lp, wp):
        assert os.listdir(d) == want
        for name in ("00000003-again.json", "00000009-gap.json", "00000006-gap.json",
                     "again.json"):
            assert not os.path.exists(d / name), name
    # the right next version still works after all these failures
    append(wp / "00000004-y.json", b"y\n")
    want.append("00000004-y.json")
    assert os.listdir(wp) == want
    # an explicit version is written as it is listed (8 digits, zero-padded); any other
    # run of digits is part of a plain name, so a file has exactly one name
    append(wp / "00000005-five.json", b"five\n")
    append(wp / "0000006-seven.json", b"seven digits\n")
    append(wp / "0000000007-ten.json", b"ten digits\n")
    want += ["00000005-five.json", "00000006-0000006-seven.json",
             "00000007-0000000007-ten.json"]
    assert os.listdir(wp) == want
    assert (wp / "00000005-five.json").read_bytes() == b"five\n"
    assert not os.path.exists(wp / "000000005-five.json")  # no alias of version 5
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "race")
    check_view_matches_chain(want, state)
    assert [c.name for c in state.chain[-3:]] == ["five.json", "0000006-seven.json",
                                                  "0000000007-ten.json"]


def test_explicit_version_from_a_mount_with_a_stale_head(mount, chain_opts, s3, ddb, bucket,
                                                         ddb_table_name):
    """A mount whose cached head is behind (within its stat_ttl) must check an explicit
    version against the real head: the right next version commits, a taken one is EEXIST."""
    a = mount(bucket, opts=chain_opts())
    b = mount(bucket, opts=chain_opts(stat_ttl=60))
    os.mkdir(a.path / "s")
    os.setxattr(a.path / "s", CHAIN, b"events")
    append(a.path / "s" / "one.json", b"1\n")
    assert os.listdir(b.path / "s") == ["00000001-one.json"]  # b caches version 1 for 60 s
    append(a.path / "s" / "two.json", b"2\n")
    append(a.path / "s" / "three.json", b"3\n")
    st, e = try_append(b.path / "s" / "00000002-stale.json", b"stale\n")
    assert (st, ename(e)) in (("open", "EEXIST"), ("close", "EEXIST")), (st, ename(e))
    st, e = try_append(b.path / "s" / "00000004-right.json", b"4\n")
    assert (st, e) == ("ok", 0), f"the right next version failed at {st}: {ename(e)}"
    want = ["00000001-one.json", "00000002-two.json", "00000003-three.json",
            "00000004-right.json"]
    assert os.listdir(b.path / "s") == want
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "s")
    check_view_matches_chain(want, state)


def test_orphans_are_never_shown_nor_taken_for_the_head(mount, chain_opts, s3, ddb, bucket,
                                                       ddb_table_name, rgw_server):
    """Changeset objects that are not on the chain: a losing writer's (version 2, beside the
    committed one) and a crashed writer's (version 4, linked to the head, never committed;
    same name as the next real append). Neither is shown; the next append is version 4 with
    its own content; the listing does not delete the object at head+1, which a writer may
    still be about to commit."""
    cu.create_table(ddb, ddb_table_name)
    c = rgw_server.client(max_pool_connections=20)
    real = cu.build_stream(c, ddb, ddb_table_name, bucket, "orph",
                           [(f"r{i}.json", b"real %d\n" % i) for i in range(1, 4)], seed=11)
    loser = cu.build_stream(c, ddb, None, bucket, "orph", [("loser.json", b"loser\n")],
                            seed=12, start_version=2, parent=real[0].id, mark=False)[0]
    crashed = cu.build_stream(c, ddb, None, bucket, "orph", [("new.json", b"orphan body\n")],
                              seed=13, start_version=4, parent=real[2].id, mark=False)[0]
    m = mount(bucket, opts=chain_opts())
    d = m.path / "orph"
    want = [x.view_name for x in real]
    assert os.listdir(d) == want
    assert head_file(d) == head_bytes(3, real[2].id)
    assert s3_exists(s3, bucket, crashed.key), "the listing deleted a possibly in-flight object"
    with raises_errno(errno.ENOENT):
        os.stat(d / "00000002-loser.json")

    append(d / "new.json", b"committed\n")
    want.append("00000004-new.json")
    assert os.listdir(d) == want
    assert (d / "00000004-new.json").read_bytes() == b"committed\n"
    assert os.stat(d / "00000004-new.json").st_size == len(b"committed\n")
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "orph")
    check_view_matches_chain(want, state)
    assert state.chain[-1].id != crashed.id and state.chain[-1].parent == real[2].id
    assert loser.id not in {x.id for x in state.chain}
    # a fresh mount agrees
    m2 = mount(bucket, opts=chain_opts())
    assert os.listdir(m2.path / "orph") == want
    assert (m2.path / "orph" / "00000004-new.json").read_bytes() == b"committed\n"


def test_a_name_looked_up_before_its_commit_is_there_after_it(mount, chain_opts, s3, ddb,
                                                             bucket, ddb_table_name):
    """`test -e DIR/00000001-a.json`, then the append that makes it: the committing mount
    shows it at once, in its listing AND by name (no stale negative entry); another mount
    that looked it up too shows it within stat_ttl."""
    m = mount(bucket, opts=chain_opts())
    other = mount(bucket, opts=chain_opts())
    d = m.path / "s"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    assert os.listdir(other.path / "s") == []
    for mnt in (m, other):
        with raises_errno(errno.ENOENT):
            os.stat(mnt.path / "s" / "00000001-a.json")
    append(d / "a.json", b"a\n")
    assert os.listdir(d) == ["00000001-a.json"]
    got = {}
    for what, fn in (("stat", lambda: os.stat(d / "00000001-a.json").st_size),
                     ("read", lambda: (d / "00000001-a.json").read_bytes())):
        try:
            got[what] = fn()
        except OSError as e:
            got[what] = ename(e.errno)
    assert got == {"stat": 2, "read": b"a\n"}, \
        f"listed but not there by name on the mount that committed it: {got}"
    wait_until(lambda: os.path.exists(other.path / "s" / "00000001-a.json"), TTL + 5,
               "the changeset by name through the other mount")
    assert (other.path / "s" / "00000001-a.json").read_bytes() == b"a\n"


# --- 5. a lost DynamoDB response -------------------------------------------------------------

@pytest.fixture
def ddb_proxy(ddb_server):
    host = ddb_server.endpoint.split("//", 1)[1].rsplit(":", 1)[0]
    p = FaultProxy(host, ddb_server.port)
    yield p
    p.close()


def test_lost_update_item_response_is_resolved(mount, chain_opts, s3, ddb, bucket,
                                               ddb_table_name, ddb_proxy):
    # what the mount may say about it: warnings about this stream only
    m = mount(bucket, opts=chain_opts(dynamodb_endpoint=ddb_proxy.endpoint),
              allow_log=(r" warn: .*lossy",))
    d = m.path / "lossy"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    assert os.listdir(d) == []
    before = len(ddb_proxy.ops())
    ddb_proxy.drop_response("UpdateItem", status=200, times=1)

    append(d / "one.json", b"one\n")  # close() must succeed: the commit did take effect
    ops = ddb_proxy.ops()[before:]
    print(f"\nDynamoDB requests of the commit: {ops}")
    assert ddb_proxy.dropped == 1, f"the rule never fired: {ops}"
    assert os.listdir(d) == ["00000001-one.json"]
    assert (d / "00000001-one.json").read_bytes() == b"one\n"
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "lossy")
    assert state.head["version"] == 1, state.head
    assert len(state.chain) == 1 and state.head["id"] == state.chain[0].id
    all_cs = cu.list_keys(s3, bucket, cu.cs_prefix("lossy"))
    assert all_cs == [state.chain[0].key], all_cs
    assert head_file(d) == head_bytes(1, state.chain[0].id)
    assert m.stats()["chain_commits"] == 1
    # a retried UpdateItem that failed its condition must have been resolved by a consistent
    # GetItem (the head already names this changeset)
    drop_at = next(i for i, x in enumerate(ops) if x.dropped)
    failed = [i for i, x in enumerate(ops) if i > drop_at and x.op == "UpdateItem"
              and x.status != 200]
    if failed:
        assert any(x.op == "GetItem" and x.json().get("ConsistentRead") is True
                   for x in ops[failed[0] + 1:]), \
            f"the failed retry was not followed by a consistent GetItem: {ops}"

    # the proxy forwards normally again: more appends, contiguous versions
    for name in ("two.json", "three.json", "four.json"):
        append(d / name, name.encode())
    want = ["00000001-one.json", "00000002-two.json", "00000003-three.json",
            "00000004-four.json"]
    assert os.listdir(d) == want
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "lossy")
    check_view_matches_chain(want, state)
    assert state.orphans == [], state.orphans
    assert m.stats()["chain_commits"] == 4
    assert ddb_proxy.dropped == 1 and ddb_proxy.errors == [], ddb_proxy.errors

    # the same for an explicit version: the lost success is a success, not EEXIST
    at = len(ddb_proxy.ops())
    ddb_proxy.drop_response("UpdateItem", status=200, times=1)
    st, e = try_append(d / "00000005-explicit.json", b"explicit\n")
    ops = ddb_proxy.ops()[at:]
    print(f"DynamoDB requests of the explicit-version commit: {ops}")
    assert ddb_proxy.dropped == 2, f"the rule never fired: {ops}"
    assert (st, ename(e)) == ("ok", "0"), f"{st}: {ename(e)}; {ops}"
    want.append("00000005-explicit.json")
    assert os.listdir(d) == want
    assert (d / "00000005-explicit.json").read_bytes() == b"explicit\n"
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "lossy")
    check_view_matches_chain(want, state)
    assert state.orphans == [], state.orphans
    assert m.stats()["chain_commits"] == 5


def test_lost_response_then_another_writer_commits_before_the_retry(
        mount, chain_opts, s3, ddb, bucket, ddb_table_name, ddb_proxy, rgw_server):
    """The commit of version 1 takes effect, its response is lost, and before the mount's
    retry another writer commits version 2 on top of it. The head then names the OTHER
    writer's changeset, yet ours is on the chain: close() must succeed, and the append must
    not be committed a second time."""
    m = mount(bucket, opts=chain_opts(dynamodb_endpoint=ddb_proxy.endpoint),
              allow_log=(r" warn: .*overtaken",))
    d = m.path / "overtaken"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    assert os.listdir(d) == []
    other: list[cu.Changeset] = []
    c = rgw_server.client()

    def other_writer_commits(ex) -> None:
        head = cu.ddb_head(ddb, ddb_table_name, bucket, "overtaken")
        assert head and head["version"] == 1, head
        other.extend(cu.build_stream(c, ddb, None, bucket, "overtaken",
                                     [("other.json", b"other\n")], seed=21, start_version=2,
                                     parent=head["id"], mark=False, head=False))
        ddb.update_item(  # as a writer does: conditional on the head it builds on
            TableName=ddb_table_name, Key={"pk": {"S": cu.head_pk(bucket, "overtaken")}},
            UpdateExpression="SET version = :v, id = :id, updated = :u",
            ConditionExpression="id = :prev",
            ExpressionAttributeValues={":v": {"N": "2"}, ":id": {"S": other[0].id},
                                       ":u": {"N": str(int(time.time() * 1000))},
                                       ":prev": {"S": head["id"]}})

    at = len(ddb_proxy.ops())
    ddb_proxy.drop_response("UpdateItem", status=200, times=1, on_drop=other_writer_commits)
    st, e = try_append(d / "mine.json", b"mine\n")
    ops = ddb_proxy.ops()[at:]
    print(f"\nDynamoDB requests of the commit: {ops}")
    assert ddb_proxy.dropped == 1 and ddb_proxy.errors == [], (ops, ddb_proxy.errors)
    assert other, "the other writer did not run"
    objects = cu.list_keys(s3, bucket, cu.cs_prefix("overtaken"))
    try:
        state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "overtaken")
    except AssertionError as err:
        pytest.fail(f"close() gave {st} {ename(e)}, and the chain in S3+DynamoDB is broken: "
                    f"{err}\nchangeset objects: {objects}\nDynamoDB requests: {ops}",
                    pytrace=False)
    names = [x.view_name for x in state.chain]
    assert (st, ename(e)) == ("ok", "0"), f"close: {st} {ename(e)}; chain {names}; {ops}"
    assert names == ["00000001-mine.json", "00000002-other.json"], names
    assert m.stats()["chain_commits"] == 1
    wait_until(lambda: os.listdir(d) == names, TTL + 5, "both changesets listed")
    assert (d / "00000001-mine.json").read_bytes() == b"mine\n"


def test_chain_consistent_read_makes_head_reads_consistent(mount, chain_opts, bucket,
                                                           ddb_proxy):
    opts = chain_opts(dynamodb_endpoint=ddb_proxy.endpoint)
    w = mount(bucket, opts=opts)
    os.mkdir(w.path / "s")
    os.setxattr(w.path / "s", CHAIN, b"events")
    append(w.path / "s" / "a.json", b"a\n")
    w.unmount()

    def listing_get_items(extra: dict) -> list:
        at = len(ddb_proxy.ops())
        r = mount(bucket, opts={**opts, **extra})
        assert os.listdir(r.path / "s") == ["00000001-a.json"]
        gets = [x for x in ddb_proxy.ops()[at:] if x.op == "GetItem"]
        r.unmount()
        return gets

    plain = listing_get_items({})
    consistent = listing_get_items({"chain_consistent_read": True})
    shown = {"without": [x.json().get("ConsistentRead") for x in plain],
             "with": [x.json().get("ConsistentRead") for x in consistent]}
    print(f"\nConsistentRead of the listing's GetItems: {shown}")
    assert plain and consistent, shown
    assert all(v is True for v in shown["with"]), shown
    assert not any(v is True for v in shown["without"]), shown


# --- 6. a cold listing of 5,000 changesets ---------------------------------------------------

N_BIG = 5000


def test_cold_listing_of_5000_changesets(mount, chain_opts, s3, ddb, bucket, ddb_table_name,
                                         rgw_server, tmp_path):
    cu.create_table(ddb, ddb_table_name)
    c16 = rgw_server.client(max_pool_connections=20)
    t0 = time.monotonic()
    entries = [(f"e{v:05d}.json", b"event %d\n" % v) for v in range(1, N_BIG + 1)]
    built = cu.build_stream(c16, ddb, ddb_table_name, bucket, "big", entries, seed=6)
    print(f"\nbuilt {N_BIG} changesets with boto3 in {time.monotonic() - t0:.1f}s")
    want = [c.view_name for c in built]

    m = mount(bucket, opts=chain_opts(), cache_dir=tmp_path / "fresh-cache")
    d = m.path / "big"
    view = os.listdir(d)
    cold = requests(m)
    assert len(view) == N_BIG
    assert view == want
    # RGW's pages may come short (its bucket index is sharded: 1000, 1000, 998, ...), so the
    # bound is what one plain pass over the changeset prefix takes, counted with boto3
    pages = list_pages(s3, bucket, cu.cs_prefix("big"))
    print(f"cold listing (from mount start): {({k: v for k, v in cold.items() if v})}; "
          f"one pass over the changesets takes {pages} LIST pages")
    assert pages <= N_BIG // 1000 + 2, pages
    assert (cold["ddb_get_item"], cold["list"] <= pages, cold["head"] <= 3) == (1, True, True), \
        (cold, pages)
    assert (d / want[0]).read_bytes() == b"event 1\n"
    assert (d / want[-1]).read_bytes() == b"event %d\n" % N_BIG

    # again after stat_ttl: at most the head, no LIST
    time.sleep(TTL + 0.5)
    before = requests(m)
    assert os.listdir(d) == want
    again = delta(m, before)
    print(f"relisting after stat_ttl: {again}")
    assert again.get("ddb_get_item", 0) <= 1 and again.get("list", 0) == 0, again

    # one more changeset from elsewhere: only what is new is listed
    new = cu.build_stream(c16, ddb, ddb_table_name, bucket, "big",
                          [("late.json", b"late\n")], seed=7, start_version=N_BIG + 1,
                          parent=built[-1].id, mark=False)
    time.sleep(TTL + 0.5)
    before = requests(m)
    view = os.listdir(d)
    grown = delta(m, before)
    print(f"relisting with one new changeset: {grown}")
    assert view == want + [new[0].view_name]
    assert grown.get("ddb_get_item", 0) <= 1 and grown.get("list", 0) <= 1, grown
    assert (d / new[0].view_name).read_bytes() == b"late\n"

    # after a remount on the same cache: the verified links come from SQLite, no LIST
    m.remount()
    time.sleep(TTL + 0.5)
    view = os.listdir(d)
    warm = requests(m)
    print(f"listing after remount on the same cache (from mount start): "
          f"{({k: v for k, v in warm.items() if v})}")
    assert view == want + [new[0].view_name]
    assert warm["ddb_get_item"] <= 1 and warm["list"] == 0, warm


# --- 7. bad input ----------------------------------------------------------------------------

def test_unknown_chain_kind_is_an_error_and_the_rest_works(mount, chain_opts, s3, bucket):
    cu.mark_stream(s3, bucket, "weird-kind", kind="bogus")
    s3.put_object(Bucket=bucket, Key="plain/f.txt", Body=b"plain file")
    m = mount(bucket, opts=chain_opts(), allow_log=(r"weird-kind", r"bogus"))
    d = m.path / "weird-kind"
    with pytest.raises(OSError) as ei:
        os.listdir(d)
    assert ei.value.errno in (errno.EIO, errno.EINVAL), ei.value
    st, e = try_append(d / "new.json", b"new\n")
    assert st != "ok" and e in (errno.EIO, errno.EINVAL), (st, ename(e))
    assert [k for k in cu.list_keys(s3, bucket, "weird-kind/") if "new" in k] == []
    lines = log_lines(m, "weird-kind", "bogus")
    assert lines, f"no log line names the directory or the kind:\n{m.log}"
    print("\n" + "\n".join(lines))
    # the rest of the mount works
    assert "plain" in os.listdir(m.path)
    assert (m.path / "plain" / "f.txt").read_bytes() == b"plain file"
    (m.path / "plain" / "g.txt").write_bytes(b"written")
    assert s3.get_object(Bucket=bucket, Key="plain/g.txt")["Body"].read() == b"written"
    assert sorted(os.listdir(m.path / "plain")) == ["f.txt", "g.txt"]


def test_missing_table_without_create_is_eio_and_the_rest_works(mount, chain_opts, s3, ddb,
                                                                bucket, ddb_table_name):
    cu.mark_stream(s3, bucket, "s")
    s3.put_object(Bucket=bucket, Key="plain/f.txt", Body=b"plain file")
    m = mount(bucket, opts=chain_opts(chain_create_table=False),
              allow_log=(re.escape(ddb_table_name), r"ResourceNotFound", r"non-existent table",
                         r" error: s/a\.json: append failed: Input/output error$"))
    d = m.path / "s"
    st, e = try_append(d / "a.json", b"a\n")
    assert (st, ename(e)) in (("open", "EIO"), ("close", "EIO")), (st, ename(e))
    with raises_errno(errno.EIO):
        os.listdir(d)
    lines = log_lines(m, ddb_table_name)
    assert lines, f"no log line names the missing table {ddb_table_name}:\n{m.log}"
    print("\n" + "\n".join(lines))
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=ddb_table_name)
    # the rest of the mount works
    assert sorted(os.listdir(m.path)) == ["plain", "s"]
    assert (m.path / "plain" / "f.txt").read_bytes() == b"plain file"
    (m.path / "plain" / "g.txt").write_bytes(b"written")
    assert s3.get_object(Bucket=bucket, Key="plain/g.txt")["Body"].read() == b"written"


def test_head_naming_a_missing_changeset_is_eio(mount, chain_opts, s3, ddb, bucket,
                                                ddb_table_name, rgw_server):
    cu.create_table(ddb, ddb_table_name)
    c = rgw_server.client(max_pool_connections=20)
    good = cu.build_stream(c, ddb, ddb_table_name, bucket, "good",
                           [("g1.json", b"g1\n"), ("g2.json", b"g2\n")], seed=1)
    broken = cu.build_stream(c, ddb, ddb_table_name, bucket, "broken",
                             [(f"b{i}.json", b"b\n") for i in range(1, 4)], seed=2)
    cu.put_head(ddb, ddb_table_name, bucket, "broken", 4, "deadbeefdeadbeef")
    # a second kind of damage: the head is right, a link in the middle is missing
    holed = cu.build_stream(c, ddb, ddb_table_name, bucket, "holed",
                            [(f"h{i}.json", b"h\n") for i in range(1, 4)], seed=3)
    s3.delete_object(Bucket=bucket, Key=holed[1].key)
    s3.put_object(Bucket=bucket, Key="plain/f.txt", Body=b"plain file")
    m = mount(bucket, opts=chain_opts(),
              allow_log=(r"broken", r"deadbeefdeadbeef", r"holed", holed[1].id))

    with raises_errno(errno.EIO):
        os.listdir(m.path / "broken")
    lines = log_lines(m, "broken", "deadbeefdeadbeef")
    assert lines, f"no log line names the stream or the missing changeset:\n{m.log}"
    print("\n" + "\n".join(lines))
    with raises_errno(errno.EIO):
        os.listdir(m.path / "holed")
    assert log_lines(m, "holed", holed[1].id), \
        f"no log line names the stream with the missing link:\n{m.log}"
    # the other streams and directories are fine
    assert os.listdir(m.path / "good") == [x.view_name for x in good]
    assert (m.path / "good" / good[1].view_name).read_bytes() == b"g2\n"
    append(m.path / "good" / "g3.json", b"g3\n")
    assert os.listdir(m.path / "good")[-1] == "00000003-g3.json"
    assert (m.path / "plain" / "f.txt").read_bytes() == b"plain file"
    # and nothing was committed on top of the broken ones
    assert cu.ddb_head(ddb, ddb_table_name, bucket, "broken")["version"] == 4
    assert len(broken) == 3


# --- 8. chain_create_table -------------------------------------------------------------------

def test_chain_create_table_creates_an_on_demand_table(mount, chain_opts, s3, ddb, bucket,
                                                       ddb_table_name):
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=ddb_table_name)
    m = mount(bucket, opts=chain_opts())
    d = m.path / "s"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    append(d / "a.json", b"a\n")
    assert os.listdir(d) == ["00000001-a.json"]
    t = ddb.describe_table(TableName=ddb_table_name)["Table"]
    assert t["TableStatus"] == "ACTIVE"
    assert t.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST", t
    assert t["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}], t["KeySchema"]
    assert {"AttributeName": "pk", "AttributeType": "S"} in t["AttributeDefinitions"]
    assert m.stats()["requests"]["ddb_create_table"] >= 1
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "s")
    check_view_matches_chain(["00000001-a.json"], state)
    # a second mount with the flag, on the existing table, works on the same stream
    m2 = mount(bucket, opts=chain_opts())
    append(m2.path / "s" / "b.json", b"b\n")
    assert os.listdir(m2.path / "s") == ["00000001-a.json", "00000002-b.json"]
