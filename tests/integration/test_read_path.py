# SPDX-License-Identifier: MIT
"""The read path: a sequential reader is served by a window of parallel ranged GETs of
read_part_size, a random reader fetches only the blocks it touches, bytes of one object
version are never mixed, and the page cache is kept across opens while the ETag holds."""
import hashlib
import os
import random

MIB = 1 << 20


def test_sequential_read_uses_part_sized_ranged_gets(s3vfs_mount, s3, bucket):
    data = random.Random(1).randbytes(64 * MIB + 12345)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    m = s3vfs_mount(bucket, opts={"read_part_size": 8 * MIB, "read_parallel": 4})
    before = m.stats()
    with open(m.path / "big", "rb") as f:
        got = f.read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    after = m.stats()
    gets = after["requests"]["get"] - before["requests"]["get"]
    # 9 parts of 8 MiB; the kernel's asynchronous readahead can split a few of them
    # (its requests arrive a little out of order), but no byte is fetched twice
    assert 9 <= gets <= 3 * 9, gets
    down = after["bytes_down"] - before["bytes_down"]
    assert len(data) <= down <= len(data) + 2 * MIB, down


def test_random_reads_fetch_only_their_blocks(s3vfs_mount, s3, bucket):
    data = random.Random(2).randbytes(32 * MIB)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    m = s3vfs_mount(bucket)
    before = m.stats()
    rnd = random.Random(3)
    offsets = [rnd.randrange(0, len(data) - 4096) // 4096 * 4096 for _ in range(20)]
    fd = os.open(m.path / "r", os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for off in offsets:
            assert os.pread(fd, 4096, off) == data[off:off + 4096]
    finally:
        os.close(fd)
    down = m.stats()["bytes_down"] - before["bytes_down"]
    # each touched 1 MiB block at most once (the kernel may read ahead a little more)
    assert down <= 20 * 2 * MIB, down
    assert down < len(data), down


def test_hot_file_is_served_by_the_page_cache(s3vfs_mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="hot", Body=b"h" * 100_000)
    m = s3vfs_mount(bucket, opts={"stat_ttl": 600})
    assert (m.path / "hot").read_bytes() == b"h" * 100_000
    before = m.requests()
    for _ in range(50):
        assert (m.path / "hot").read_bytes() == b"h" * 100_000
    assert m.requests() - before == 0


def test_object_changed_between_reads_is_seen_after_stat_ttl(s3vfs_mount, s3, bucket):
    import time
    s3.put_object(Bucket=bucket, Key="v", Body=b"1" * 5000)
    m = s3vfs_mount(bucket, opts={"stat_ttl": 1})
    assert (m.path / "v").read_bytes() == b"1" * 5000
    s3.put_object(Bucket=bucket, Key="v", Body=b"2" * 6000)
    time.sleep(1.5)
    assert (m.path / "v").read_bytes() == b"2" * 6000


def test_disk_cache_serves_reads_across_remounts(s3vfs_mount, s3, bucket):
    data = random.Random(4).randbytes(12 * MIB + 7)
    s3.put_object(Bucket=bucket, Key="c", Body=data)
    m = s3vfs_mount(bucket, opts={"cache_size": "64M"})
    assert (m.path / "c").read_bytes() == data
    first = m.stats()["requests"]["get"]
    assert first >= 2
    m.remount()  # a new process: the kernel's page cache of the file is gone
    before = m.stats()
    assert (m.path / "c").read_bytes() == data
    after = m.stats()
    assert after["requests"]["get"] - before["requests"]["get"] == 0
    assert after["cache_hits"] > before["cache_hits"]


def test_disk_cache_is_keyed_by_etag(s3vfs_mount, s3, bucket):
    import time
    s3.put_object(Bucket=bucket, Key="k", Body=b"a" * (3 * MIB))
    m = s3vfs_mount(bucket, opts={"stat_ttl": 1})
    assert (m.path / "k").read_bytes() == b"a" * (3 * MIB)
    s3.put_object(Bucket=bucket, Key="k", Body=b"b" * (3 * MIB))
    time.sleep(1.5)
    m.remount()
    assert (m.path / "k").read_bytes() == b"b" * (3 * MIB)


def test_cache_size_zero_turns_the_disk_cache_off(s3vfs_mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="z", Body=b"z" * MIB)
    m = s3vfs_mount(bucket, opts={"cache_size": "0"})
    assert (m.path / "z").read_bytes() == b"z" * MIB
    m.remount()
    before = m.stats()["requests"]["get"]
    assert (m.path / "z").read_bytes() == b"z" * MIB
    assert m.stats()["requests"]["get"] - before >= 1


def test_a_file_kept_open_does_not_hide_a_newer_version(s3vfs_mount, s3, bucket):
    """A hot file is often open all the time (overlapping requests of a web server): opens
    after stat_ttl read the object's new version within a moment, while a descriptor of the
    old version goes on reading the old version whole, even after the new one was read (the
    old inode is retired: fs/retire.c). No request and no object come of the retiring."""
    import time
    v1, v2 = b"1" * MIB, b"2" * (MIB + MIB // 2)
    s3.put_object(Bucket=bucket, Key="d/busy", Body=v1)
    m = s3vfs_mount(bucket, opts={"stat_ttl": 1})
    with open(m.path / "d" / "busy", "rb", buffering=0) as old:
        assert old.read(MIB // 2) == v1[:MIB // 2]
        s3.put_object(Bucket=bucket, Key="d/busy", Body=v2)
        time.sleep(1.5)
        seen, t0 = [], time.monotonic()
        while time.monotonic() - t0 < 10:
            got = (m.path / "d" / "busy").read_bytes()
            assert got in (v1, v2), f"a body of neither version: {len(got)} bytes"
            seen.append(got == v2)
            if got == v2:
                break
            time.sleep(0.05)
        assert seen and seen[-1], f"the new version was not served: {len(seen)} reads"
        before = m.requests()
        assert (m.path / "d" / "busy").read_bytes() == v2
        assert old.read() == v1[MIB // 2:], "the old descriptor read bytes of the new version"
        assert os.fstat(old.fileno()).st_size == len(v1)
        assert m.requests() - before == 0
    assert os.listdir(m.path / "d") == ["busy"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["d/busy"], keys
    assert (m.path / "d" / "busy").read_bytes() == v2


def test_inode_numbers_name_the_version(s3vfs_mount, s3, bucket):
    """A file's inode number is the same for every stat and listing of one version, on every
    mount, and another number once its content changed (nginx's open_file_cache and tail -F
    then open it again); a directory's never changes."""
    import time
    s3.put_object(Bucket=bucket, Key="d/f", Body=b"one")
    m = s3vfs_mount(bucket, opts={"stat_ttl": 1})
    m2 = s3vfs_mount(bucket, opts={"stat_ttl": 1})
    st = os.stat(m.path / "d" / "f")
    dino = os.stat(m.path / "d").st_ino
    listed = {e.name: e.inode() for e in os.scandir(m.path / "d")}
    assert listed == {"f": st.st_ino}
    assert {e.name: e.inode() for e in os.scandir(m.path)}["d"] == dino
    with open(m.path / "d" / "f", "rb") as fh:
        assert os.fstat(fh.fileno()).st_ino == st.st_ino
    assert os.stat(m2.path / "d" / "f").st_ino == st.st_ino
    assert len({st.st_ino, dino, os.stat(m.path).st_ino}) == 3

    s3.put_object(Bucket=bucket, Key="d/f", Body=b"two!")
    time.sleep(1.5)
    st2 = os.stat(m.path / "d" / "f")
    assert st2.st_size == 4 and st2.st_ino != st.st_ino
    assert os.stat(m.path / "d").st_ino == dino
    assert {e.name: e.inode() for e in os.scandir(m.path / "d")} == {"f": st2.st_ino}

    # written through the mount: a new number once uploaded, stable after
    (m.path / "d" / "f").write_bytes(b"three")
    st3 = os.stat(m.path / "d" / "f")
    assert st3.st_ino not in (st.st_ino, st2.st_ino)
    time.sleep(1.5)
    assert os.stat(m.path / "d" / "f").st_ino == st3.st_ino
    assert os.stat(m2.path / "d" / "f").st_ino == st3.st_ino
