# SPDX-License-Identifier: MIT
"""The write path: a file written sequentially from 0 is uploaded as multipart parts while
it is being written, close() sends only the tail; anything else falls back to a whole upload
at close; the result is byte-exact either way and no multipart upload is left behind."""
import hashlib
import os
import random
import time

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
        os.write(fd, data[:24 * MIB])
        # three parts of 8 MiB are on their way before anything is closed
        wait_until(lambda: m.stats()["requests"]["mpu_part"] >= 3, 60, "parts in flight")
        assert m.stats()["requests"]["mpu_create"] == 1
        os.write(fd, data[24 * MIB:])
    finally:
        os.close(fd)
    r = m.stats()["requests"]
    assert (r["mpu_create"], r["mpu_part"], r["mpu_complete"], r["put"]) == (1, 6, 1, 0), r
    got = s3.get_object(Bucket=bucket, Key="s")
    assert got["ETag"].endswith('-6"')
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
    assert os.stat(m.path / "s").st_size == len(data)


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
