# SPDX-License-Identifier: MIT
"""Issue 7, "Faults": the mount behind a fault-injecting HTTP proxy (httpfault.py) between it
and RGW. Scripted faults: 503 SlowDown bursts, 500 InternalError, 429, a connection reset
mid-body, a stall longer than the timeouts, a truncated body with the full Content-Length, a
response lost after the server applied a write, connections refused for a period.

The promises checked (README "Durability", "Wire-layer behaviour"):
- reads and listings go through transient faults (bounded retries) and fail with EIO only
  once the retry budget is spent; never a wrong byte (sha256 of everything read);
- close()/fsync() succeed through transient faults; a persistent fault makes close() EIO, the
  data stays pending (stats pending_uploads) and uploads by itself once the fault clears,
  also across an unmount and a mount;
- a multipart upload that fails is aborted: no upload left in progress (boto3
  list_multipart_uploads).
"""
from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from httpfault import HttpFaultProxy
from robustutil import (MIB, bounded, file_sha, keys, lasting_uploads, make_watchdog_fixture,
                        rand, raises_errno, s3_sha, sha, timed, uploads, wait_until,
                        write_file)

mount = make_watchdog_fixture(150)

# What the daemon may log while the proxy injects faults (warn level and up).
FAULT_LOG_ALLOW = (
    r" warn: ",
    r" error: upload of \S+ failed: Input/output error \(kept; it will be retried",
    r" error: /\S*: upload at release failed$",
    r" error: /\S*: (fsync|flush|upload)",
    r" error: LIST \S*: ",
    r" error: malformed listing reply from the server",
    r" error: (GET|HEAD|PUT|POST|DELETE) ",
    r" error: read of \S+",
)


@pytest.fixture
def proxy(rgw_server):
    p = HttpFaultProxy(rgw_server.host, rgw_server.port)
    yield p
    p.close()


def opts_via(proxy, **extra) -> dict:
    o = {"endpoint": proxy.endpoint, "connect_timeout": 2, "stat_ttl": 600}
    o.update(extra)
    return o


def read_all(path, chunk: int = MIB) -> bytes:
    with open(path, "rb", buffering=0) as f:
        out = []
        while True:
            b = f.read(chunk)
            if not b:
                return b"".join(out)
            out.append(b)


# --- reads and listings ----------------------------------------------------------------------

def test_reads_and_listings_go_through_transient_faults(mount, s3, bucket, proxy):
    small = rand(300_000, 1)
    big = rand(40 * MIB + 123, 2)
    s3.put_object(Bucket=bucket, Key="small.bin", Body=small)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)
    for i in range(30):
        s3.put_object(Bucket=bucket, Key=f"d/f{i:02}", Body=rand(1000 + i, 100 + i))
    m = mount(bucket, opts=opts_via(proxy, cache_size=0, read_part_size=4 * MIB),
              allow_log=FAULT_LOG_ALLOW)

    # HEAD of a name not listed yet: 503s then a 500
    rules = [proxy.add("status", "head", times=2, status=503, code="SlowDown"),
             proxy.add("status", "head", times=1, status=500, code="InternalError")]
    assert os.stat(m.path / "small.bin").st_size == len(small)
    # listings: a SlowDown burst, a 500, a 429
    rules += [proxy.add("status", "list", times=2, status=503, code="SlowDown"),
             proxy.add("status", "list", times=1, status=500, code="InternalError"),
             proxy.add("status", "list", times=1, status=429, code="TooManyRequests")]
    assert sorted(os.listdir(m.path)) == ["big.bin", "d", "small.bin"]
    rules += [proxy.add("status", "list", times=1, status=503, code="SlowDown"),
              proxy.add("status", "list", times=1, status=503, code="ServiceUnavailable")]
    assert sorted(os.listdir(m.path / "d")) == [f"f{i:02}" for i in range(30)]

    # GETs: every fault kind, spread over the ranged GETs of the big file
    rules += [proxy.add("status", "get", times=2, status=503, code="SlowDown"),
              proxy.add("status", "get", times=1, status=500, code="InternalError"),
              proxy.add("status", "get", times=1, status=429, code="TooManyRequests"),
              proxy.add("reset", "get", times=2, fraction=0.3),
              proxy.add("truncate", "get", times=2, fraction=0.6)]
    got = bounded(lambda: read_all(m.path / "big.bin"), 120, "read of big.bin")
    assert len(got) == len(big) and sha(got) == sha(big), "wrong bytes after faults"
    rules += [proxy.add("reset", "get", times=1, fraction=0.5),
              proxy.add("truncate", "get", times=1, fraction=0.5)]
    assert read_all(m.path / "small.bin") == small
    for i in (0, 7, 29):
        assert read_all(m.path / "d" / f"f{i:02}") == rand(1000 + i, 100 + i)

    unfired = [r for r in rules if r.times]
    assert not unfired, f"faults that never fired (the test proved nothing): {unfired}"
    st = m.stats()
    assert st["retries"] > 0, st
    print(f"faults injected: {proxy.injected()} {dict(proxy.actions)}; "
          f"retries {st['retries']}")


@pytest.mark.parametrize("cut", ["reset", "truncate"])
def test_a_listing_cut_mid_body_is_retried(mount, s3, bucket, proxy, cut):
    """A LIST reply broken off after part of its body (a connection reset, or a body shorter
    than its Content-Length) is a transient fault like any other: retried, not an error."""
    for i in range(200):
        s3.put_object(Bucket=bucket, Key=f"d/f{i:03}", Body=b"")
    m = mount(bucket, opts=opts_via(proxy), allow_log=FAULT_LOG_ALLOW)
    r = proxy.add(cut, "list", times=1, fraction=0.5)
    got = bounded(lambda: sorted(os.listdir(m.path / "d")), 60, "listdir")
    assert r.fired == 1
    assert got == [f"f{i:03}" for i in range(200)]


def test_reads_and_listings_report_eio_once_the_retry_budget_is_spent(mount, s3, bucket,
                                                                        proxy):
    """Each persistent fault, on each kind of request that reads: the call fails with EIO
    (what a program expects of an I/O failure; not the transport's or the HTTP status's own
    errno), after a bounded number of attempts and time; once the fault is gone, the same
    call gives the right answer and the daemon has lived on."""
    data = rand(3 * MIB, 3)
    cases = [  # (what, action, op, rule kwargs)
        ("GET 503 SlowDown", "status", "get", dict(status=503, code="SlowDown")),
        ("GET 500", "status", "get", dict(status=500, code="InternalError")),
        ("GET 429", "status", "get", dict(status=429, code="TooManyRequests")),
        ("GET reset mid-body", "reset", "get", dict(fraction=0.5)),
        ("GET truncated body", "truncate", "get", dict(fraction=0.5)),
        ("LIST 500", "status", "list", dict(status=500, code="InternalError")),
        ("LIST 503 SlowDown", "status", "list", dict(status=503, code="SlowDown")),
        ("LIST 429", "status", "list", dict(status=429, code="TooManyRequests")),
        ("LIST reset mid-body", "reset", "list", dict(fraction=0.5)),
        ("LIST truncated body", "truncate", "list", dict(fraction=0.5)),
        ("HEAD 503 SlowDown", "status", "head", dict(status=503, code="SlowDown")),
        ("HEAD 429", "status", "head", dict(status=429, code="TooManyRequests")),
        ("HEAD 500", "status", "head", dict(status=500, code="InternalError")),
    ]
    for i, (_, _, op, _) in enumerate(cases):
        if op == "get":
            s3.put_object(Bucket=bucket, Key=f"f{i}.bin", Body=data)
        elif op == "list":
            s3.put_object(Bucket=bucket, Key=f"d{i}/x", Body=b"x")
        else:
            s3.put_object(Bucket=bucket, Key=f"k/h{i}", Body=b"hh")
    # retries=3: the budget is spent sooner (the default rides out ~11 s of faults)
    m = mount(bucket, opts=opts_via(proxy, cache_size=0, retries=3), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    calls = {"get": lambda i: sha(read_all(m.path / f"f{i}.bin")) == sha(data),
             "list": lambda i: os.listdir(m.path / f"d{i}") == ["x"],
             "head": lambda i: os.stat(m.path / "k" / f"h{i}").st_size == 2}
    problems, outcomes = [], {}
    for i, (what, action, op, kw) in enumerate(cases):
        r = proxy.add(action, op, times=None, **kw)
        err, took = timed(lambda: calls[op](i), 90, what)
        proxy.remove(r)
        outcomes[what] = (err if isinstance(err, OSError) else err, round(took, 1), r.fired)
        if not (isinstance(err, OSError) and err.errno == errno.EIO):
            problems.append(f"{what}: want EIO, got {err!r}")
        if took > 70:
            problems.append(f"{what}: the error came after {took:.1f}s")
        if not 1 <= r.fired <= 5 * 6:
            problems.append(f"{what}: {r.fired} attempts")
        ok, _ = timed(lambda: calls[op](i), 60, f"{what}, after the fault")
        if ok is not True:
            problems.append(f"{what}: after the fault was gone: {ok!r}")
    print("persistent faults:", outcomes)
    assert m.proc.poll() is None
    assert not problems, "\n".join(problems)


def test_a_throttled_listing_is_never_shown_empty_or_partial(mount, s3, bucket, proxy):
    """S3 throttles with 503 SlowDown (and 429). A listing that stays throttled past the
    retry budget must fail; showing the directory empty, or with its first page only, makes
    programs (rsync --delete, backup tools, find) act on a wrong view of the data."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: s3.put_object(Bucket=bucket, Key=f"big/f{i:04}", Body=b""),
                    range(1100)))
        list(ex.map(lambda i: s3.put_object(Bucket=bucket, Key=f"small/f{i}", Body=b""),
                    range(3)))
    m = mount(bucket, opts=opts_via(proxy), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    seen = {}
    r = proxy.add("status", "list", times=None, status=503, code="SlowDown")
    seen["small/, every page throttled"], _ = timed(lambda: os.listdir(m.path / "small"), 60,
                                                    "listdir small")
    proxy.remove(r)
    r = proxy.add("status", "list", times=None, status=503, code="SlowDown",
                  target="continuation-token")
    seen["big/, its 2nd page throttled"], _ = timed(lambda: os.listdir(m.path / "big"), 60,
                                                    "listdir big")
    assert r.fired > 0
    proxy.remove(r)
    wrong = {k: (f"{len(v)} entries" if isinstance(v, list) else v) for k, v in seen.items()
             if not isinstance(v, OSError)}
    assert not wrong, f"throttled listings shown as if complete: {wrong}"
    assert all(v.errno == errno.EIO for v in seen.values()), seen
    assert len(os.listdir(m.path / "big")) == 1100
    assert len(os.listdir(m.path / "small")) == 3


def test_a_stall_longer_than_the_timeouts_is_cut_and_retried(mount, s3, bucket, proxy):
    """One GET and one PUT get no answer for longer than the low-speed timeout (30 s): the
    attempt is abandoned and the next one succeeds."""
    data = rand(2 * MIB, 4)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    m = mount(bucket, opts=opts_via(proxy, cache_size=0), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    gs = proxy.add("stall", "get", times=1, seconds=75)
    ps = proxy.add("stall", "put", times=1, seconds=75)
    up = rand(700_000, 5)
    box = {}

    def writer():
        write_file(m.path / "w.bin", up)
        box["w"] = time.monotonic()

    t0 = time.monotonic()
    th = threading.Thread(target=writer)
    th.start()
    got = bounded(lambda: read_all(m.path / "r.bin"), 100, "read through a stalled GET")
    took_r = time.monotonic() - t0
    th.join(100)
    assert not th.is_alive(), "close() through a stalled PUT did not return in 100 s"
    assert "w" in box, "the writer failed"
    assert gs.fired == 1 and ps.fired == 1
    assert sha(got) == sha(data)
    assert s3_sha(s3, bucket, "w.bin") == (sha(up), len(up))
    assert 20 < took_r < 70, f"the read took {took_r:.1f}s"
    print(f"read {took_r:.1f}s, write {box['w'] - t0:.1f}s through a stall")


# --- writes ----------------------------------------------------------------------------------

WRITE_OPTS = {"multipart_threshold": 5 * MIB, "part_size": 5 * MIB}


def test_writes_go_through_transient_faults(mount, s3, bucket, proxy):
    m = mount(bucket, opts=opts_via(proxy, **WRITE_OPTS), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    files = {}
    rules = []

    # small files: 503 bursts, 500, 429, a reset while the body is sent, a lost response
    rules += [proxy.add("status", "put", times=2, status=503, code="SlowDown"),
              proxy.add("status", "put", times=1, status=500, code="InternalError"),
              proxy.add("status", "put", times=1, status=429, code="TooManyRequests")]
    files["a.bin"] = rand(200_000, 10)
    write_file(m.path / "a.bin", files["a.bin"])
    rules += [proxy.add("reset_request", "put", times=1),
              proxy.add("drop", "put", times=1)]
    files["b.bin"] = rand(100_000, 11)
    write_file(m.path / "b.bin", files["b.bin"], fsync=True)

    # a streamed multipart upload (written sequentially): faults on create, parts, complete
    rules += [proxy.add("status", "mpu_create", times=1, status=503, code="SlowDown"),
              proxy.add("status", "part", times=2, status=500, code="InternalError"),
              proxy.add("reset_request", "part", times=1, fraction=0.4),
              proxy.add("drop", "part", times=1),
              proxy.add("status", "mpu_complete", times=1, status=503, code="SlowDown")]
    files["stream.bin"] = rand(23 * MIB + 17, 12)
    write_file(m.path / "stream.bin", files["stream.bin"])

    # a lost CompleteMultipartUpload response, then one cut short (the XML of its result
    # truncated, the full Content-Length announced): the object is there, close must say 0
    rules += [proxy.add("drop", "mpu_complete", times=1),
              proxy.add("truncate", "mpu_complete", times=1, fraction=0.5)]
    files["lost-complete.bin"] = rand(12 * MIB + 1, 13)
    write_file(m.path / "lost-complete.bin", files["lost-complete.bin"])

    # a whole (not streamed) multipart upload: written out of order
    rules += [proxy.add("status", "part", times=1, status=503, code="SlowDown"),
              proxy.add("reset_request", "part", times=1)]
    data = bytearray(rand(11 * MIB, 14))
    fd = os.open(m.path / "whole.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.pwrite(fd, bytes(data[6 * MIB:]), 6 * MIB)
        os.pwrite(fd, bytes(data[:6 * MIB]), 0)
    finally:
        os.close(fd)
    files["whole.bin"] = bytes(data)

    # metadata changes and a rename: their copies and deletes fail once each, or lose replies
    rules += [proxy.add("status", "copy", times=1, status=503, code="SlowDown"),
              proxy.add("drop", "copy", times=1),
              proxy.add("truncate", "copy", times=1, fraction=0.5),
              proxy.add("status", "delete", times=1, status=500, code="InternalError"),
              proxy.add("drop", "delete", times=1)]
    os.chmod(m.path / "a.bin", 0o600)
    os.rename(m.path / "b.bin", m.path / "b2.bin")
    files["b2.bin"] = files.pop("b.bin")

    unfired = [r for r in rules if r.times]
    assert not unfired, f"faults that never fired: {unfired}"
    for name, want in files.items():
        assert s3_sha(s3, bucket, name) == (sha(want), len(want)), name
    assert sorted(keys(s3, bucket)) == sorted(files)
    assert int(s3.head_object(Bucket=bucket, Key="a.bin")["Metadata"]["mode"]) & 0o777 == 0o600
    assert uploads(s3, bucket) == [], "multipart uploads left in progress"
    assert m.stats()["pending_uploads"] == 0
    for name, want in files.items():  # and the mount shows what it wrote
        assert file_sha(m.path / name) == (sha(want), len(want)), name
    print(f"faults injected: {proxy.injected()} {dict(proxy.actions)}")


@pytest.mark.parametrize("content_md5", [True, False], ids=["content_md5", "default"])
def test_content_md5_lets_s3_refuse_a_body_damaged_on_the_way(mount, s3, bucket, proxy,
                                                              content_md5):
    """-o content_md5: every data upload (PUT, streamed part, whole-upload part) carries
    Content-MD5, so S3 refuses a body damaged on the way (BadDigest) and it is sent again:
    the object is right and close says 0. By default (as s3fs) no MD5 is computed or sent:
    the bytes are then S3's word (TCP, or TLS on https), checked by nothing else."""
    extra = {"content_md5": True} if content_md5 else {}
    m = mount(bucket, opts=opts_via(proxy, **extra, **WRITE_OPTS), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    files = {"small.bin": rand(100_000, 60), "stream.bin": rand(12 * MIB + 5, 61)}
    if content_md5:
        rules = [proxy.add("corrupt", "put", times=1), proxy.add("corrupt", "part", times=1)]
    for name, data in files.items():
        write_file(m.path / name, data)
    # out of order: a whole multipart upload at close
    whole = rand(11 * MIB, 62)
    fd = os.open(m.path / "whole.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.pwrite(fd, whole[6 * MIB:], 6 * MIB)
        os.pwrite(fd, whole[:6 * MIB], 0)
    finally:
        os.close(fd)
    files["whole.bin"] = whole
    uploads_seen = [e for e in proxy.exchanges if e.op in ("put", "part")]
    assert len([e for e in uploads_seen if e.op == "part"]) >= 6
    if content_md5:
        assert all(r.fired == 1 for r in rules)
        assert all(e.md5 for e in uploads_seen), uploads_seen
        refused = [e for e in uploads_seen if e.action == "corrupt"]
        assert [e.status for e in refused] == [400, 400], refused  # BadDigest, then sent again
    else:
        assert not any(e.md5 for e in uploads_seen), uploads_seen
    for name, want in files.items():
        assert s3_sha(s3, bucket, name) == (sha(want), len(want)), name
    assert uploads(s3, bucket) == []


def test_a_persistent_write_fault_is_eio_then_the_data_uploads_by_itself(mount, s3, bucket,
                                                                          proxy):
    opts = opts_via(proxy, unmount_timeout=3, **WRITE_OPTS)
    m = mount(bucket, opts=opts, allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    files = {"p-small.bin": rand(150_000, 20), "p-stream.bin": rand(12 * MIB + 5, 21)}
    rules = [proxy.add("status", ops, times=None, status=503, code="SlowDown")
             for ops in (("put", "part", "mpu_create", "mpu_complete"),)]
    for name, data in files.items():
        fd = os.open(m.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        for i in range(0, len(data), MIB):
            os.write(fd, data[i:i + MIB])
        with raises_errno(errno.EIO):
            bounded(lambda: os.close(fd), 120, f"close() of {name} with writes failing")
    # fsync too reports the failure
    name = "p-fsync.bin"
    files[name] = rand(60_000, 22)
    fd = os.open(m.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, files[name])
    try:
        with raises_errno(errno.EIO):
            bounded(lambda: os.fsync(fd), 120, "fsync() with writes failing")
    finally:
        try:
            os.close(fd)  # its result: test_close_after_a_failed_fsync_...
        except OSError:
            pass
    assert rules[0].fired > 0
    for name in files:
        assert s3_sha(s3, bucket, name) is None, f"{name} became visible although it failed"
    st = m.stats()
    assert st["pending_uploads"] == len(files), st
    assert uploads(s3, bucket) == [], "a failed multipart upload was not aborted"
    # the data is still readable through the mount while pending (checked at the end)
    unreadable = {}
    for name, data in files.items():
        try:
            got = file_sha(m.path / name)
        except OSError as e:
            got = e
        if got != (sha(data), len(data)):
            unreadable[name] = got

    # an unmount while the fault lasts: the drain gives up after unmount_timeout, the data
    # stays in the cache directory; the next mount (fault cleared) uploads it, unasked
    m.unmount()
    assert any(p.name.endswith(".data") for p in m.cache_dir.glob("*/staging/*")), \
        "no staged data kept in the cache directory"
    for name in files:
        assert s3_sha(s3, bucket, name) is None
    m.start()
    wait_until(lambda: m.stats()["pending_uploads"] == len(files), 10,
               "the pending uploads known again after the mount")
    time.sleep(6)  # a background round while the fault lasts changes nothing
    assert m.stats()["pending_uploads"] == len(files)
    for name in files:
        assert s3_sha(s3, bucket, name) is None
    proxy.clear()
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "pending uploads to finish")
    for name, data in files.items():
        assert s3_sha(s3, bucket, name) == (sha(data), len(data)), name
        assert file_sha(m.path / name) == (sha(data), len(data)), name
    assert uploads(s3, bucket) == []
    assert not any(m.cache_dir.glob("*/staging/*.data")), "staged data left after upload"
    assert not unreadable, ("pending files (close() said EIO, the data is staged) could not "
                            f"be read back through the mount: {unreadable}")


def test_close_after_a_failed_fsync_does_not_claim_success(mount, s3, bucket, proxy):
    """README: "close() and fsync() return 0 only after S3 acknowledged the object". An
    fsync() that failed leaves the data pending; a close() right after, with the fault still
    there, must not return 0 for data S3 has not acknowledged. Likewise a second descriptor
    (a dup, a child's inherited copy) whose close comes after the first one failed."""
    m = mount(bucket, opts=opts_via(proxy, unmount_timeout=3), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    proxy.add("status", "put", times=None, status=503, code="SlowDown")
    fd = os.open(m.path / "a.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"a" * 1000)
    with raises_errno(errno.EIO):
        bounded(lambda: os.fsync(fd), 60, "fsync")
    err, _ = timed(lambda: os.close(fd), 60, "close after the failed fsync")
    in_s3 = s3_sha(s3, bucket, "a.bin") is not None
    fd = os.open(m.path / "b.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fd2 = os.dup(fd)
    os.write(fd, b"b" * 1000)
    with raises_errno(errno.EIO):
        bounded(lambda: os.close(fd2), 60, "close of the dup")
    err2, _ = timed(lambda: os.close(fd), 60, "close of the original")
    in_s3_2 = s3_sha(s3, bucket, "b.bin") is not None
    proxy.clear()
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "pending uploads")
    problems = []
    if not (in_s3 or isinstance(err, OSError)):
        problems.append("close() after a failed fsync() returned 0")
    if not (in_s3_2 or isinstance(err2, OSError)):
        problems.append("the last close() of a file whose dup's close() failed returned 0")
    assert not problems, "; ".join(problems) + " while S3 had not acknowledged the data"


def test_connections_refused_for_a_period(mount, s3, bucket, proxy):
    data = rand(2 * MIB, 30)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    s3.put_object(Bucket=bucket, Key="r2.bin", Body=data)
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"x")
    s3.put_object(Bucket=bucket, Key="e/y", Body=b"y")
    m = mount(bucket, opts=opts_via(proxy, cache_size=0, **WRITE_OPTS),
              allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    problems = []

    # an outage of 2 s (an endpoint restarting, a load balancer failing over): reads,
    # listings and writes wait it out within their retry budget
    w = rand(300_000, 31)
    for what, fn in (("read", lambda: sha(read_all(m.path / "r.bin")) == sha(data)),
                     ("listdir", lambda: os.listdir(m.path / "d") == ["x"]),
                     ("write", lambda: write_file(m.path / "w.bin", w) or True)):
        proxy.refuse()
        threading.Timer(2.0, proxy.accept).start()
        got, took = timed(fn, 60, f"{what} during a 2 s outage")
        print(f"{what} during a 2 s outage: {got!r} after {took:.2f}s")
        if got is not True:
            problems.append(f"{what} during a 2 s outage: {got!r} after {took:.2f}s")
        time.sleep(max(0.0, 2.2 - took))

    # a long outage: the retry budget runs out; EIO (the errno a program expects of an I/O
    # failure, not the transport's own), within a bounded time; all fine after
    proxy.refuse()
    try:
        w2 = rand(400_000, 32)
        fd = os.open(m.path / "w2.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, w2)
        for what, fn in (("close", lambda: os.close(fd)),
                         ("read", lambda: read_all(m.path / "r2.bin")),
                         ("listdir", lambda: os.listdir(m.path / "e"))):
            got, took = timed(fn, 90, f"{what} during an outage")
            print(f"{what} during a long outage: {got!r} after {took:.2f}s")
            if not (isinstance(got, OSError) and got.errno == errno.EIO) or took > 70:
                problems.append(f"{what} during a long outage: {got!r} after {took:.2f}s "
                                "(want EIO)")
        pending = m.stats()["pending_uploads"]
    finally:
        proxy.accept()
    assert pending == 1 + (s3_sha(s3, bucket, "w.bin") is None)
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "the pending uploads")
    assert s3_sha(s3, bucket, "w2.bin") == (sha(w2), len(w2))
    assert s3_sha(s3, bucket, "w.bin") == (sha(w), len(w))
    assert sha(read_all(m.path / "r2.bin")) == sha(data)
    assert os.listdir(m.path / "e") == ["y"]
    assert not problems, "\n".join(problems)


# --- multipart uploads that fail are aborted -------------------------------------------------

def test_failed_multipart_uploads_are_aborted(mount, s3, bucket, proxy):
    m = mount(bucket, opts=opts_via(proxy, unmount_timeout=3, **WRITE_OPTS),
              allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    # parts fail for good (streamed and whole uploads), create and complete succeed
    r = proxy.add("status", "part", times=None, status=500, code="InternalError")
    stream = rand(16 * MIB, 40)
    with raises_errno(errno.EIO):
        bounded(lambda: write_file(m.path / "s.bin", stream), 120, "streamed write")
    whole = bytearray(rand(11 * MIB, 41))
    fd = os.open(m.path / "w.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, bytes(whole[6 * MIB:]), 6 * MIB)
    os.pwrite(fd, bytes(whole[:6 * MIB]), 0)
    with raises_errno(errno.EIO):
        bounded(lambda: os.close(fd), 120, "close of a whole multipart upload")
    assert r.fired > 0 and proxy.count("mpu_create") >= 2
    # (uploads retried in the background are in flight for the retry budget, ~11 s each
    # part: whether the failed ones were aborted is checked once the fault is gone, below)
    # complete fails for good: aborted too
    proxy.remove(r)
    r = proxy.add("status", "mpu_complete", times=None, status=500, code="InternalError")
    c = rand(10 * MIB + 3, 42)
    with raises_errno(errno.EIO):
        bounded(lambda: write_file(m.path / "c.bin", c), 120, "write with complete failing")
    assert r.fired > 0
    proxy.clear()
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 60, "the pending uploads")
    for name, want in (("s.bin", stream), ("w.bin", bytes(whole)), ("c.bin", c)):
        assert s3_sha(s3, bucket, name) == (sha(want), len(want)), name
    assert uploads(s3, bucket) == []


def test_a_lost_create_multipart_reply_leaves_no_upload(mount, s3, bucket, proxy):
    """CreateMultipartUpload reached S3 but its reply was lost: the retry creates a second
    upload; the first must not stay in progress for ever (issue 7: "list in-progress uploads
    afterwards: none of ours left")."""
    m = mount(bucket, opts=opts_via(proxy, **WRITE_OPTS), allow_log=FAULT_LOG_ALLOW)
    os.listdir(m.path)
    r = proxy.add("drop", "mpu_create", times=1)
    data = rand(12 * MIB, 43)
    write_file(m.path / "x.bin", data)
    assert r.fired == 1
    assert s3_sha(s3, bucket, "x.bin") == (sha(data), len(data))
    # give a background round its chance to clean up
    deadline = time.monotonic() + 12
    while uploads(s3, bucket) and time.monotonic() < deadline:
        time.sleep(0.5)
    m.unmount()
    assert uploads(s3, bucket) == [], \
        "the upload whose create reply was lost is left in progress"
