# SPDX-License-Identifier: MIT
"""The write path: a file written sequentially from 0 is uploaded as multipart parts while
it is being written, close() sends only the tail; anything else falls back to a whole upload
at close; the result is byte-exact either way and no multipart upload is left behind."""
import hashlib
import os
import random
import time

import pytest

from httpfault import HttpFaultProxy

MIB = 1 << 20
OPTS = {"multipart_threshold": 16 * MIB, "part_size": 8 * MIB}


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_parts_are_sent_while_the_file_is_written(s3vfs_mount, s3, bucket):
    m = s3vfs_mount(bucket, opts=OPTS)
    data = random.Random(5).randbytes(40 * MIB + 5)
    os.listdir(m.path)
    fd = os.open(m.path / "s", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data[:24 * MIB + 1])
        # three parts of 8 MiB are on their way before anything is closed (a part goes
        # once the writer is past it)
        wait_until(lambda: m.stats()["requests"]["mpu_part"] >= 3, 60, "parts in flight")
        assert m.stats()["requests"]["mpu_create"] == 1
        os.write(fd, data[24 * MIB + 1:])
    finally:
        os.close(fd)
    r = m.stats()["requests"]
    assert (r["mpu_create"], r["mpu_part"], r["mpu_complete"], r["put"]) == (1, 6, 1, 0), r
    got = s3.get_object(Bucket=bucket, Key="s")
    assert got["ETag"].endswith('-6"')
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
    assert os.stat(m.path / "s").st_size == len(data)


@pytest.fixture
def proxy(rgw_server):
    p = HttpFaultProxy(rgw_server.host, rgw_server.port)
    yield p
    p.close()


def test_the_writer_never_waits_for_the_parts(s3vfs_mount, s3, bucket, proxy):
    """The bytes are in the staging file: the writer runs ahead of the uploads, which take
    the parts as they are ready, parallel_count at a time, and close waits for them."""
    m = s3vfs_mount(bucket, opts={**OPTS, "endpoint": proxy.endpoint, "parallel_count": 2})
    data = random.Random(7).randbytes(40 * MIB + 3)
    os.listdir(m.path)
    held = proxy.add("delay", "part", times=None, seconds=600)  # no part is answered...
    fd = os.open(m.path / "s", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(data), MIB):
            os.write(fd, data[i:i + MIB])  # ...and yet every write returns
        wait_until(lambda: proxy.count("part") == 2, 60, "two parts sent")
        time.sleep(0.5)
        assert proxy.count("part") == 2          # never more than parallel_count at once
        assert m.stats()["requests"]["mpu_part"] == 0
        proxy.clear()                            # the answers come: the rest follows
    finally:
        os.close(fd)
    assert held.fired == 2
    r = m.stats()["requests"]
    assert (r["mpu_create"], r["mpu_part"], r["mpu_complete"], r["put"]) == (1, 6, 1, 0), r
    got = s3.get_object(Bucket=bucket, Key="s")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_by_default_one_part_is_a_put_and_more_stream(s3vfs_mount, s3, bucket):
    """Defaults: parts of 16 MiB, and the threshold is the part size: a file of one part is
    one PUT; one byte more and the first part leaves as soon as the writer is past it."""
    m = s3vfs_mount(bucket)
    os.listdir(m.path)
    data = random.Random(8).randbytes(16 * MIB + 1)
    for name, n in (("one", 16 * MIB), ("two", 16 * MIB + 1)):
        before = m.stats()["requests"]
        (m.path / name).write_bytes(data[:n])
        r = m.stats()["requests"]
        d = {k: r[k] - before[k] for k in ("put", "mpu_create", "mpu_part", "mpu_complete")}
        want = {"put": 1, "mpu_create": 0, "mpu_part": 0, "mpu_complete": 0} if n == 16 * MIB \
            else {"put": 0, "mpu_create": 1, "mpu_part": 2, "mpu_complete": 1}
        assert d == want, (name, d)
        got = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data[:n]).digest()


def test_a_multipart_object_gets_the_type_of_a_single_put(s3vfs_mount, s3, bucket):
    """libcurl sends a form type with a POST that has none: CreateMultipartUpload must not
    leave it on the object."""
    m = s3vfs_mount(bucket, opts=OPTS)
    (m.path / "big").write_bytes(b"b" * (20 * MIB))
    (m.path / "small").write_bytes(b"s")
    types = {k: s3.head_object(Bucket=bucket, Key=k)["ContentType"] for k in ("big", "small")}
    assert s3.head_object(Bucket=bucket, Key="big")["ETag"].endswith('-3"')
    assert types == {"big": "binary/octet-stream", "small": "binary/octet-stream"}, types


def test_a_write_elsewhere_falls_back_to_a_whole_upload(s3vfs_mount, s3, bucket):
    m = s3vfs_mount(bucket, opts=OPTS)
    data = bytearray(random.Random(6).randbytes(30 * MIB))
    with open(m.path / "w", "wb") as f:
        f.write(data[:20 * MIB])
        wait_until(lambda: m.stats()["requests"]["mpu_part"] >= 1, 60, "a part in flight")
        f.seek(1000)
        f.write(b"X" * 10)          # rewrites a part already sent: the stream is aborted
        data[1000:1010] = b"X" * 10
        f.seek(20 * MIB)
        f.write(data[20 * MIB:])
    r = m.stats()["requests"]
    assert r["mpu_abort"] >= 1, r
    body = s3.get_object(Bucket=bucket, Key="w")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(bytes(data)).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_small_files_do_not_stream(s3vfs_mount, s3, bucket):
    m = s3vfs_mount(bucket, opts=OPTS)
    os.listdir(m.path)
    (m.path / "small").write_bytes(b"x" * (10 * MIB))
    r = m.stats()["requests"]
    assert (r["put"], r["mpu_create"]) == (1, 0), r


def test_small_overwrite_of_a_large_file_copies_the_unchanged_parts(s3vfs_mount, s3, bucket):
    data = bytearray(random.Random(7).randbytes(40 * MIB))
    s3.put_object(Bucket=bucket, Key="big", Body=bytes(data))
    m = s3vfs_mount(bucket, opts=OPTS)
    before = m.stats()["requests"]
    with open(m.path / "big", "r+b") as f:
        f.seek(20 * MIB + 3)
        f.write(b"patched")
    data[20 * MIB + 3:20 * MIB + 10] = b"patched"
    r = m.stats()["requests"]
    d = {k: r[k] - before[k] for k in ("mpu_create", "mpu_part", "mpu_part_copy",
                                        "mpu_complete", "put")}
    # 5 parts of 8 MiB: the one written is uploaded, the other 4 are copied server-side
    assert d == {"mpu_create": 1, "mpu_part": 1, "mpu_part_copy": 4, "mpu_complete": 1,
                 "put": 0}, d
    body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(bytes(data)).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
