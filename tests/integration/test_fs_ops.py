# SPDX-License-Identifier: MIT
"""The filesystem operations of issue 3 on a real s3vfs mount of a fresh RGW bucket.

Every operation of the FUSE surface gets a test, checked twice: through the mount and with
boto3 (the objects that land in the bucket), often again through a later mount (so that no
cache of the writer is involved). Then the bugs that the peers (s3fs 1.90, rclone 1.60) have
and that must not exist here, the request budgets of the metadata cache (exact counts from the
mount's statistics xattr), the durability promise (through a TCP proxy that can cut the mount
off from S3), and the large cases (200 MiB, part-size boundaries, 10,000 entries, two writers).

Compatibility with s3fs-fuse objects is in test_fs_compat.py, not here.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


TEST_TIMEOUT = 150.0  # seconds a test may take before its mounts are killed


@pytest.fixture
def mount(s3vfs_mount):
    """s3vfs_mount (conftest.py) with a watchdog: a test still running after TEST_TIMEOUT
    seconds has its daemons killed (lazy unmount, SIGTERM, SIGKILL), so that a call blocked in
    a hung mount returns (ENOTCONN) and the test fails instead of hanging."""
    made = []
    fired = threading.Event()

    def make(*args, **kwargs):
        m = s3vfs_mount(*args, **kwargs)
        made.append(m)
        return m

    def fire():
        fired.set()
        for m in list(made):
            m.cleanup()

    timer = threading.Timer(TEST_TIMEOUT, fire)
    timer.daemon = True
    timer.start()
    yield make
    timer.cancel()
    if fired.is_set():
        pytest.fail(f"the test ran over {TEST_TIMEOUT:.0f}s: its mounts were killed",
                    pytrace=False)


# --- helpers ---------------------------------------------------------------------------------

def keys(s3, bucket, prefix: str = "") -> list[str]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def body(s3, bucket, key) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def head(s3, bucket, key) -> dict | None:
    """head_object, or None on 404."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def meta(s3, bucket, key) -> dict[str, str]:
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@contextlib.contextmanager
def raises_errno(code: int):
    """The block must raise OSError with exactly this errno."""
    with pytest.raises(OSError) as ei:
        yield ei
    got = ei.value.errno
    assert got == code, (f"want {errno.errorcode[code]}, got "
                         f"{errno.errorcode.get(got, got)}: {ei.value}")


def requests(m) -> dict[str, int]:
    return dict(m.stats()["requests"])


def delta(m, before: dict[str, int]) -> dict[str, int]:
    """Request counts since `before`, the non-zero ones only ("total" included)."""
    after = requests(m)
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def bounded(fn, timeout: float, what: str):
    """fn() in a helper thread, at most timeout seconds (a call into a hung daemon blocks)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 — re-raised below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True, name=what)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"{what} did not return within {timeout:.0f}s", pytrace=False)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_until(cond, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s", pytrace=False)
        time.sleep(interval)


def write_file(path, data: bytes, mode: int = 0o644, chunk: int = 64 * 1024) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        for i in range(0, len(data), chunk):
            assert os.write(fd, data[i:i + chunk]) == len(data[i:i + chunk])
    finally:
        os.close(fd)


def file_sha(path, chunk: int = MIB) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest(), n
            h.update(b)
            n += len(b)


def key_lengths(s3, bucket, verbose: bool = False) -> list:
    """The sorted lengths of the bucket's keys (long keys make unreadable diffs); verbose:
    (length, the key's last 30 characters)."""
    ks = keys(s3, bucket)
    return sorted((len(k), k[-30:]) for k in ks) if verbose else sorted(len(k) for k in ks)


def meta_mode(md: dict[str, str]) -> int:
    return int(md["mode"])


def meta_secs(value: str) -> int:
    return int(value.split(".")[0])


# --- a TCP proxy between the mount and RGW that can be switched off --------------------------

class TcpProxy:
    """127.0.0.1:port forwards to target. down(): open connections are cut (reset) and new ones
    are accepted and reset at once, as a dead server would; up(): forwarding again."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self.refused = 0
        self._up = True
        self._stop = False
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="proxy")
        self._thread.start()

    @staticmethod
    def _reset(s: socket.socket) -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
        except OSError:
            pass
        s.close()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if not self._up:
                self.refused += 1
                self._reset(c)
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
                u.settimeout(None)
            except OSError:
                self._reset(c)
                continue
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns |= {c, u}
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            gone = [s for s in (src, dst) if s in self._conns]
            self._conns -= set(gone)
        for s in gone:
            self._reset(s)

    def down(self) -> None:
        self._up = False
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            self._reset(s)

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self._stop = True
        self.down()
        self._thread.join(5)
        self.lsock.close()


@pytest.fixture
def proxy(rgw_server):
    p = TcpProxy(rgw_server.host, rgw_server.port)
    yield p
    p.close()


# --- getattr, readdir ------------------------------------------------------------------------

def test_getattr_of_files_directories_and_root(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="f.txt", Body=b"12345")
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    s3.put_object(Bucket=bucket, Key="imp/deep/x", Body=b"x" * 3000)
    s3.put_object(Bucket=bucket, Key="marked/", Body=b"", ContentType="application/x-directory")
    lm = s3.head_object(Bucket=bucket, Key="f.txt")["LastModified"].timestamp()
    m = mount(bucket)

    root = os.stat(m.path)
    assert stat.S_ISDIR(root.st_mode)

    st = os.stat(m.path / "f.txt")
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o644  # no metadata: umask 022 default
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert st.st_size == 5
    assert abs(st.st_mtime - lm) < 2, (st.st_mtime, lm)
    assert st.st_nlink >= 1
    assert st.st_blocks * 512 >= st.st_size  # du must not show 0 for a non-empty file

    assert os.stat(m.path / "empty").st_size == 0
    st = os.stat(m.path / "imp/deep/x")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 3000
    for d in ("imp", "imp/deep", "marked"):
        st = os.stat(m.path / d)
        assert stat.S_ISDIR(st.st_mode), d
        assert stat.S_IMODE(st.st_mode) == 0o755, (d, oct(st.st_mode))


def test_readdir_fills_types_and_attributes(mount, s3, bucket):
    sizes = {f"file{i}": i * 100 for i in range(5)}
    for name, n in sizes.items():
        s3.put_object(Bucket=bucket, Key=f"d/{name}", Body=b"z" * n)
    s3.put_object(Bucket=bucket, Key="d/implicit/x", Body=b"x")
    s3.put_object(Bucket=bucket, Key="d/marker/", Body=b"", ContentType="application/x-directory")
    m = mount(bucket)
    os.symlink("file1", m.path / "d" / "link")

    entries = {e.name: e for e in os.scandir(m.path / "d")}
    assert set(entries) == set(sizes) | {"implicit", "marker", "link"}
    for name, n in sizes.items():
        e = entries[name]
        assert e.is_file(follow_symlinks=False) and not e.is_dir(follow_symlinks=False), name
        assert e.stat(follow_symlinks=False).st_size == n, name
    for name in ("implicit", "marker"):
        assert entries[name].is_dir(follow_symlinks=False), name
    assert entries["link"].is_symlink()
    # ls -f shows "." and ".." once each, nothing else twice
    out = subprocess.run(["ls", "-f", "-1", str(m.path / "d")], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split("\n")
    out = [x for x in out if x]
    assert sorted(out) == sorted(set(sizes) | {"implicit", "marker", "link", ".", ".."})


# --- create, open, read, write ---------------------------------------------------------------

def test_create_write_read_sequential(mount, s3, bucket):
    m = mount(bucket)
    data = rand(3 * MIB + 123, 1)
    write_file(m.path / "seq.bin", data)
    assert (m.path / "seq.bin").read_bytes() == data
    assert os.stat(m.path / "seq.bin").st_size == len(data)
    assert body(s3, bucket, "seq.bin") == data
    h = s3.head_object(Bucket=bucket, Key="seq.bin")
    assert h["ContentLength"] == len(data)
    assert meta_mode(h["Metadata"]) == stat.S_IFREG | 0o644

    # read in odd-sized chunks through a fresh mount (no cache of the writer)
    r = mount(bucket)
    got = bytearray()
    with open(r.path / "seq.bin", "rb", buffering=0) as f:
        while chunk := f.read(77777):
            got += chunk
    assert bytes(got) == data


def test_random_reads(mount, s3, bucket):
    data = rand(4 * MIB + 5, 2)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    m = mount(bucket)
    rng = random.Random(3)
    fd = os.open(m.path / "r.bin", os.O_RDONLY)
    try:
        for _ in range(60):
            off = rng.randrange(0, len(data) + 100)
            n = rng.choice([1, 17, 4096, 65536, 300000])
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
        assert os.pread(fd, 10, len(data)) == b""
        assert os.pread(fd, 10, len(data) - 3) == data[-3:]
    finally:
        os.close(fd)


def test_random_writes_into_an_existing_object(mount, s3, bucket):
    orig = rand(2 * MIB, 4)
    s3.put_object(Bucket=bucket, Key="w.bin", Body=orig)
    m = mount(bucket)
    model = bytearray(orig)
    rng = random.Random(5)
    fd = os.open(m.path / "w.bin", os.O_RDWR)
    try:
        for _ in range(40):
            off = rng.randrange(0, len(model))
            chunk = rng.randbytes(rng.choice([1, 100, 5000, 70000]))
            assert os.pwrite(fd, chunk, off) == len(chunk)
            end = off + len(chunk)
            if end > len(model):
                model.extend(b"\0" * (end - len(model)))
            model[off:end] = chunk
        # a write past the end leaves a hole of zeros
        hole_at = len(model) + 10000
        assert os.pwrite(fd, b"tail", hole_at) == 4
        model.extend(b"\0" * 10000 + b"tail")
        assert os.pread(fd, len(model) + 10, 0) == bytes(model)
    finally:
        os.close(fd)
    assert body(s3, bucket, "w.bin") == bytes(model)
    assert (mount(bucket).path / "w.bin").read_bytes() == bytes(model)


def test_append(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="log.txt", Body=b"first line\n")
    m = mount(bucket)
    for line in (b"second\n", b"third\n"):
        fd = os.open(m.path / "log.txt", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.lseek(fd, 0, os.SEEK_SET)  # O_APPEND writes at the end whatever the offset
            os.write(fd, b"+")
        finally:
            os.close(fd)
    want = b"first line\nsecond\n+third\n+"
    assert (m.path / "log.txt").read_bytes() == want
    assert body(s3, bucket, "log.txt") == want
    with open(m.path / "new.log", "ab") as f:  # O_CREAT|O_APPEND on a missing file
        f.write(b"a")
    with open(m.path / "new.log", "ab") as f:
        f.write(b"b")
    assert body(s3, bucket, "new.log") == b"ab"


# --- truncate --------------------------------------------------------------------------------

def test_ftruncate_open_file_down_and_up(mount, s3, bucket):
    m = mount(bucket)
    data = rand(100_000, 6)
    fd = os.open(m.path / "t.bin", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.ftruncate(fd, 40_000)
        assert os.fstat(fd).st_size == 40_000
        os.ftruncate(fd, 60_000)
        assert os.fstat(fd).st_size == 60_000
        assert os.pread(fd, 70_000, 0) == data[:40_000] + b"\0" * 20_000
    finally:
        os.close(fd)
    want = data[:40_000] + b"\0" * 20_000
    assert body(s3, bucket, "t.bin") == want
    assert os.stat(m.path / "t.bin").st_size == 60_000
    # and on an existing object: truncate to 0, then extend
    fd = os.open(m.path / "t.bin", os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
        os.ftruncate(fd, 10)
    finally:
        os.close(fd)
    assert body(s3, bucket, "t.bin") == b"\0" * 10


def test_truncate_of_a_closed_file_keeps_its_bytes(mount, s3, bucket):
    """Peer bug: truncate(path) of a closed file uploaded zeros in place of the kept bytes."""
    data = rand(MIB + 7, 7)
    for k in ("never-read", "read-before", "grow"):
        s3.put_object(Bucket=bucket, Key=k, Body=data)
    m = mount(bucket)
    assert (m.path / "read-before").read_bytes() == data  # in the data cache now

    os.truncate(m.path / "never-read", 1000)
    os.truncate(m.path / "read-before", 1000)
    for k in ("never-read", "read-before"):
        assert body(s3, bucket, k) == data[:1000], k
        assert os.stat(m.path / k).st_size == 1000, k
        assert (m.path / k).read_bytes() == data[:1000], k

    os.truncate(m.path / "grow", len(data) + 5000)  # up: kept bytes, then zeros
    want = data + b"\0" * 5000
    assert body(s3, bucket, "grow") == want
    assert (m.path / "grow").read_bytes() == want

    os.truncate(m.path / "never-read", 0)
    assert body(s3, bucket, "never-read") == b""

    r = mount(bucket)
    assert (r.path / "read-before").read_bytes() == data[:1000]
    assert (r.path / "grow").read_bytes() == want


def test_ftruncate_with_unflushed_writes_is_honored(mount, s3, bucket):
    """Peer bug: ftruncate on a descriptor with unflushed writes was ignored."""
    m = mount(bucket)
    p = m.path / "fx.bin"
    a = rand(200_000, 8)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, a)
        os.ftruncate(fd, 10_000)            # no fsync in between
        os.pwrite(fd, b"END", 50_000)       # past the new end: zeros in between
    finally:
        os.close(fd)
    want = a[:10_000] + b"\0" * 40_000 + b"END"
    assert body(s3, bucket, "fx.bin") == want
    assert p.read_bytes() == want


def test_fsx_like_random_operations(mount, s3, bucket):
    """A small fsx: random writes, truncates and reads on one descriptor, with fsyncs and
    reopens in between, against an in-memory model."""
    m = mount(bucket)
    p = m.path / "fsx.bin"
    rng = random.Random(9)
    model = bytearray()
    maxlen = 512 * 1024
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for step in range(400):
            op = rng.random()
            if op < 0.40:
                off = rng.randrange(0, maxlen)
                chunk = rng.randbytes(rng.randrange(1, 40_000))
                os.pwrite(fd, chunk, off)
                end = off + len(chunk)
                if end > len(model):
                    model.extend(b"\0" * (end - len(model)))
                model[off:end] = chunk
            elif op < 0.55:
                n = rng.randrange(0, maxlen)
                os.ftruncate(fd, n)
                del model[n:]
                model.extend(b"\0" * (n - len(model)))
            elif op < 0.85:
                off = rng.randrange(0, maxlen)
                n = rng.randrange(1, 50_000)
                got = os.pread(fd, n, off)
                assert got == bytes(model[off:off + n]), f"step {step}: pread({n}, {off})"
            elif op < 0.90:
                os.fsync(fd)
            elif op < 0.95:
                assert os.fstat(fd).st_size == len(model), f"step {step}"
            else:
                os.close(fd)
                fd = -1
                assert body(s3, bucket, "fsx.bin") == bytes(model), f"step {step}: after close"
                fd = os.open(p, os.O_RDWR)
    finally:
        if fd >= 0:
            os.close(fd)
    assert body(s3, bucket, "fsx.bin") == bytes(model)
    assert (mount(bucket).path / "fsx.bin").read_bytes() == bytes(model)


# --- flush, fsync, close ---------------------------------------------------------------------

def test_fsync_and_close_upload_before_they_return(mount, s3, bucket):
    m = mount(bucket)
    fd = os.open(m.path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"one")
        os.fsync(fd)
        assert body(s3, bucket, "f") == b"one"
        os.write(fd, b"two")
        os.fdatasync(fd)
        assert body(s3, bucket, "f") == b"onetwo"
        os.write(fd, b"three")
        dup = os.dup(fd)
        os.close(dup)  # close of any descriptor flushes (FUSE flush)
        assert body(s3, bucket, "f") == b"onetwothree"
        os.write(fd, b"four")
    finally:
        os.close(fd)
    assert body(s3, bucket, "f") == b"onetwothreefour"

    # fsync of an unmodified file and of a read-only descriptor upload nothing
    before = requests(m)
    fd = os.open(m.path / "f", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(m.path / "f", os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    d = delta(m, before)
    assert d.get("put", 0) == 0 and d.get("mpu_create", 0) == 0, d


def test_no_placeholder_object_before_the_upload(mount, s3, bucket):
    """s3fs issue #11/#1017: no zero-byte object is visible while a new file is written, and
    a small new file costs one PUT."""
    m = mount(bucket)
    os.listdir(m.path)
    before = requests(m)
    fd = os.open(m.path / "new.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"content")
        assert head(s3, bucket, "new.txt") is None, "an object is visible before close"
    finally:
        os.close(fd)
    assert body(s3, bucket, "new.txt") == b"content"
    d = delta(m, before)
    assert d.get("put") == 1, d


# --- unlink, mkdir, rmdir --------------------------------------------------------------------

def test_unlink(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="d/boto", Body=b"b")
    m = mount(bucket)
    (m.path / "d" / "mine").write_bytes(b"m")
    for name in ("boto", "mine"):
        os.unlink(m.path / "d" / name)
        with raises_errno(errno.ENOENT):
            os.stat(m.path / "d" / name)
        assert head(s3, bucket, f"d/{name}") is None, name
    assert os.listdir(m.path / "d") == []
    assert stat.S_ISDIR(os.stat(m.path / "d").st_mode)  # the directory stays until rmdir


def test_unlink_of_an_open_file(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="open", Body=b"still readable")
    m = mount(bucket)
    fd = os.open(m.path / "open", os.O_RDONLY)
    try:
        os.unlink(m.path / "open")
        assert os.listdir(m.path) == []
        assert os.pread(fd, 100, 0) == b"still readable"
    finally:
        os.close(fd)
    assert keys(s3, bucket) == []  # no .fuse_hidden* object left behind
    assert os.listdir(m.path) == []


def test_mkdir(mount, s3, bucket):
    m = mount(bucket)
    os.mkdir(m.path / "d", 0o755)
    os.mkdir(m.path / "d" / "sub", 0o700)
    h = s3.head_object(Bucket=bucket, Key="d/")
    assert h["ContentLength"] == 0
    assert h["ContentType"] == "application/x-directory"
    assert meta_mode(h["Metadata"]) & 0o7777 == 0o755
    assert stat.S_IFMT(meta_mode(h["Metadata"])) in (0, stat.S_IFDIR)
    assert meta_mode(meta(s3, bucket, "d/sub/")) & 0o7777 == 0o700
    assert keys(s3, bucket) == ["d/", "d/sub/"]
    st = os.stat(m.path / "d" / "sub")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert os.listdir(m.path / "d") == ["sub"]
    assert os.listdir(m.path / "d" / "sub") == []


def test_rmdir(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="imp/sub/x", Body=b"x")  # implicit imp/ and imp/sub/
    m = mount(bucket, opts={"stat_ttl": 2})
    os.mkdir(m.path / "empty")
    os.rmdir(m.path / "empty")
    assert head(s3, bucket, "empty/") is None
    with raises_errno(errno.ENOENT):
        os.stat(m.path / "empty")

    with raises_errno(errno.ENOTEMPTY):
        os.rmdir(m.path / "imp")         # only implicit children
    with raises_errno(errno.ENOTEMPTY):
        os.rmdir(m.path / "imp" / "sub")

    os.mkdir(m.path / "later")
    assert os.listdir(m.path / "later") == []
    s3.put_object(Bucket=bucket, Key="later/deep/y", Body=b"y")  # another client adds a child
    time.sleep(2.5)  # past stat_ttl
    with raises_errno(errno.ENOTEMPTY):
        os.rmdir(m.path / "later")
    os.mkdir(m.path / "withdir")
    os.mkdir(m.path / "withdir" / "inner")
    with raises_errno(errno.ENOTEMPTY):
        os.rmdir(m.path / "withdir")
    assert keys(s3, bucket) == ["imp/sub/x", "later/", "later/deep/y", "withdir/",
                                "withdir/inner/"]

    # rm -r of a tree with implicit directories: unlink the files, then rmdir bottom-up
    shutil.rmtree(m.path / "imp")
    shutil.rmtree(m.path / "later")
    shutil.rmtree(m.path / "withdir")
    assert keys(s3, bucket) == []
    assert os.listdir(m.path) == []


# --- rename ----------------------------------------------------------------------------------

def test_rename_file(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="boto.txt", Body=b"from boto3")
    m = mount(bucket)
    (m.path / "a.txt").write_bytes(b"A")
    os.chmod(m.path / "a.txt", 0o600)
    os.rename(m.path / "a.txt", m.path / "b.txt")
    assert keys(s3, bucket) == ["b.txt", "boto.txt"]
    assert body(s3, bucket, "b.txt") == b"A"
    assert meta_mode(meta(s3, bucket, "b.txt")) == stat.S_IFREG | 0o600  # metadata moved too
    with raises_errno(errno.ENOENT):
        os.stat(m.path / "a.txt")
    assert stat.S_IMODE(os.stat(m.path / "b.txt").st_mode) == 0o600

    os.mkdir(m.path / "dir")
    os.rename(m.path / "boto.txt", m.path / "dir" / "moved.txt")  # never looked up before
    assert body(s3, bucket, "dir/moved.txt") == b"from boto3"
    assert head(s3, bucket, "boto.txt") is None
    assert (m.path / "dir" / "moved.txt").read_bytes() == b"from boto3"


def test_rename_file_over_an_existing_file(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="target", Body=b"old target content, longer")
    m = mount(bucket)
    (m.path / "src").write_bytes(b"new")
    assert (m.path / "target").read_bytes() == b"old target content, longer"
    os.rename(m.path / "src", m.path / "target")
    assert keys(s3, bucket) == ["target"]
    assert body(s3, bucket, "target") == b"new"
    assert (m.path / "target").read_bytes() == b"new"
    assert os.stat(m.path / "target").st_size == 3
    assert os.listdir(m.path) == ["target"]


def test_rename_directory_recursively(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="d/imp/c", Body=b"implicit child")
    m = mount(bucket)
    (m.path / "d" / "a").write_bytes(b"a" * 1000)
    os.chmod(m.path / "d" / "a", 0o600)
    os.mkdir(m.path / "d" / "sub")
    (m.path / "d" / "sub" / "b").write_bytes(b"b")
    os.mkdir(m.path / "d" / "empty")
    os.symlink("sub/b", m.path / "d" / "ln")
    before = sorted(k for k in keys(s3, bucket))
    attrs = ("mode", "uid", "gid", "mtime")
    metas = {k: {a: meta(s3, bucket, k).get(a) for a in attrs} for k in ("d/a", "d/ln")}
    assert stat.S_ISLNK(meta_mode(meta(s3, bucket, "d/ln")))
    os.rename(m.path / "d", m.path / "e")

    after = keys(s3, bucket)
    assert not [k for k in after if k.startswith("d/")], after
    assert after == sorted("e/" + k[2:] for k in before), (before, after)
    assert body(s3, bucket, "e/a") == b"a" * 1000
    assert body(s3, bucket, "e/imp/c") == b"implicit child"
    for k, want in metas.items():  # the metadata moved too (mode 0600, symlink type)
        e = "e/" + k[2:]
        assert {a: meta(s3, bucket, e).get(a) for a in attrs} == want, e
    assert body(s3, bucket, "e/ln") == b"sub/b"
    with raises_errno(errno.ENOENT):
        os.stat(m.path / "d")
    assert sorted(os.listdir(m.path / "e")) == ["a", "empty", "imp", "ln", "sub"]
    assert (m.path / "e" / "sub" / "b").read_bytes() == b"b"
    assert (m.path / "e" / "ln").read_bytes() == b"b"
    assert os.listdir(m.path / "e" / "empty") == []

    r = mount(bucket, opts={"stat_ttl": 1})  # and as another mount sees it
    assert os.listdir(r.path) == ["e"]
    assert sorted(os.listdir(r.path / "e")) == ["a", "empty", "imp", "ln", "sub"]
    time.sleep(2.5)  # a listing shows defaults until stat_ttl (test_attributes_after_...)
    assert os.readlink(r.path / "e" / "ln") == "sub/b"


def test_rename_directory_over_directories(mount, s3, bucket):
    """Peer bug: rename of a directory over a non-empty directory succeeded."""
    s3.put_object(Bucket=bucket, Key="full/x", Body=b"x")   # implicit, never listed
    m = mount(bucket)
    os.mkdir(m.path / "src")
    (m.path / "src" / "f").write_bytes(b"f")
    os.mkdir(m.path / "full2")
    (m.path / "full2" / "g").write_bytes(b"g")

    with raises_errno(errno.ENOTEMPTY):
        os.rename(m.path / "src", m.path / "full")
    with raises_errno(errno.ENOTEMPTY):
        os.rename(m.path / "src", m.path / "full2")
    assert keys(s3, bucket) == ["full/x", "full2/", "full2/g", "src/", "src/f"]
    assert (m.path / "src" / "f").read_bytes() == b"f"

    os.mkdir(m.path / "vacant")
    os.rename(m.path / "src", m.path / "vacant")  # over an empty directory: allowed
    assert keys(s3, bucket) == ["full/x", "full2/", "full2/g", "vacant/", "vacant/f"]
    assert os.listdir(m.path / "vacant") == ["f"]


# --- attributes ------------------------------------------------------------------------------

def test_chmod_chown_utimens_persist(mount, s3, bucket):
    m = mount(bucket)
    f = m.path / "f"
    f.write_bytes(b"payload")
    os.mkdir(m.path / "d")
    os.chmod(f, 0o640)
    os.chown(f, 1234, 2345)
    os.utime(f, (1500000000, 1600000000))
    os.chmod(m.path / "d", 0o700)
    os.chown(m.path / "d", 11, 22)
    os.utime(m.path / "d", (1400000000, 1450000000))

    md = meta(s3, bucket, "f")
    assert meta_mode(md) == stat.S_IFREG | 0o640, md
    assert (md["uid"], md["gid"]) == ("1234", "2345"), md
    assert meta_secs(md["mtime"]) == 1600000000, md
    assert meta_secs(md["atime"]) == 1500000000, md
    assert body(s3, bucket, "f") == b"payload"  # the copy onto itself kept the data
    dm = meta(s3, bucket, "d/")
    assert meta_mode(dm) & 0o7777 == 0o700 and stat.S_IFMT(meta_mode(dm)) in (0, stat.S_IFDIR)
    assert (dm["uid"], dm["gid"]) == ("11", "22") and meta_secs(dm["mtime"]) == 1450000000

    def check(path):
        st = os.stat(path / "f")
        assert stat.S_IMODE(st.st_mode) == 0o640 and stat.S_ISREG(st.st_mode)
        assert (st.st_uid, st.st_gid) == (1234, 2345)
        assert int(st.st_mtime) == 1600000000
        assert (path / "f").read_bytes() == b"payload"
        st = os.stat(path / "d")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
        assert (st.st_uid, st.st_gid) == (11, 22) and int(st.st_mtime) == 1450000000

    check(m.path)
    m.remount()
    check(m.path)
    check(mount(bucket).path)  # a fresh cache: from the objects alone

    # chmod of a boto3 object (no metadata) adds metadata and keeps its content type
    s3.put_object(Bucket=bucket, Key="plain.html", Body=b"<p>", ContentType="text/html")
    os.chmod(m.path / "plain.html", 0o600)
    h = s3.head_object(Bucket=bucket, Key="plain.html")
    assert meta_mode(h["Metadata"]) == stat.S_IFREG | 0o600
    assert h["ContentType"] == "text/html"
    assert body(s3, bucket, "plain.html") == b"<p>"


def test_symlink_and_readlink(mount, s3, bucket):
    m = mount(bucket)
    os.mkdir(m.path / "d")
    (m.path / "d" / "target").write_bytes(b"T")
    os.symlink("target", m.path / "d" / "rel")
    os.symlink("../nowhere/x", m.path / "dangling")
    assert os.readlink(m.path / "d" / "rel") == "target"
    assert (m.path / "d" / "rel").read_bytes() == b"T"
    assert stat.S_ISLNK(os.lstat(m.path / "dangling").st_mode)
    assert not os.path.exists(m.path / "dangling") and os.path.lexists(m.path / "dangling")
    h = s3.head_object(Bucket=bucket, Key="dangling")
    assert stat.S_ISLNK(meta_mode(h["Metadata"]))
    assert body(s3, bucket, "dangling") == b"../nowhere/x"
    assert os.lstat(m.path / "dangling").st_size == len("../nowhere/x")
    with raises_errno(errno.EINVAL):
        os.readlink(m.path / "d" / "target")  # not a link

    r = mount(bucket)
    assert os.readlink(r.path / "d" / "rel") == "target"
    assert os.readlink(r.path / "dangling") == "../nowhere/x"
    assert stat.S_ISLNK(os.lstat(r.path / "d" / "rel").st_mode)


def test_attributes_after_a_cold_listing(mount, s3, bucket):
    """Another mount lists a directory first (ls), then looks at the entries (ls -l, cat).

    The documented guarantee (README, "Consistency"): a listing carries no user metadata, so
    entries first seen in a listing show the mount's defaults (that is what keeps a cold
    `ls -l` at its LIST pages and no HEAD); once stat_ttl has passed, the first look at an
    entry fetches its metadata (one HEAD, then cached by ETag). After that a symlink is a
    symlink, cat through it gives the target's bytes, and modes, owners and mtimes are the
    stored ones."""
    w = mount(bucket)
    os.mkdir(w.path / "d")
    (w.path / "d" / "target").write_bytes(b"the target")
    os.symlink("target", w.path / "d" / "ln")
    (w.path / "d" / "f").write_bytes(b"f")
    os.chmod(w.path / "d" / "f", 0o600)
    os.chown(w.path / "d" / "f", 1234, 2345)
    os.utime(w.path / "d" / "f", (1500000000, 1600000000))
    w.unmount()

    r = mount(bucket, opts={"stat_ttl": 1})  # a fresh cache
    assert sorted(os.listdir(r.path / "d")) == ["f", "ln", "target"]
    assert stat.S_ISREG(os.lstat(r.path / "d" / "ln").st_mode)  # the listing's defaults
    time.sleep(2.5)  # past stat_ttl and the listing's window
    ln = os.lstat(r.path / "d" / "ln")
    f = os.lstat(r.path / "d" / "f")
    got = {"ln type": stat.S_IFMT(ln.st_mode), "cat ln": (r.path / "d" / "ln").read_bytes(),
           "f mode": stat.S_IMODE(f.st_mode), "f owner": (f.st_uid, f.st_gid),
           "f mtime": int(f.st_mtime)}
    assert got == {"ln type": stat.S_IFLNK, "cat ln": b"the target", "f mode": 0o600,
                   "f owner": (1234, 2345), "f mtime": 1600000000}
    assert os.readlink(r.path / "d" / "ln") == "target"


def test_xattrs(mount, s3, bucket):
    m = mount(bucket)
    f = m.path / "f"
    f.write_bytes(b"data")
    os.mkdir(m.path / "d")
    binary = bytes(range(256))
    os.setxattr(f, "user.text", b"hello")
    os.setxattr(f, "user.bin", binary)
    os.setxattr(m.path / "d", "user.dir", b"dv")
    assert os.getxattr(f, "user.text") == b"hello"
    assert os.getxattr(f, "user.bin") == binary
    assert {"user.text", "user.bin"} <= set(os.listxattr(f))
    with raises_errno(errno.ENODATA):
        os.getxattr(f, "user.missing")
    with raises_errno(errno.EEXIST):
        os.setxattr(f, "user.text", b"x", os.XATTR_CREATE)
    with raises_errno(errno.ENODATA):
        os.setxattr(f, "user.nothere", b"x", os.XATTR_REPLACE)
    os.setxattr(f, "user.text", b"replaced", os.XATTR_REPLACE)
    assert "xattr" in meta(s3, bucket, "f")
    assert "xattr" in meta(s3, bucket, "d/")

    r = mount(bucket)  # stored in the objects
    assert os.getxattr(r.path / "f", "user.text") == b"replaced"
    assert os.getxattr(r.path / "f", "user.bin") == binary
    assert os.getxattr(r.path / "d", "user.dir") == b"dv"

    os.removexattr(f, "user.text")
    with raises_errno(errno.ENODATA):
        os.getxattr(f, "user.text")
    with raises_errno(errno.ENODATA):
        os.removexattr(f, "user.text")
    os.removexattr(f, "user.bin")  # the last one
    assert not [x for x in os.listxattr(f) if not x.startswith("user.s3vfs.")]
    assert f.read_bytes() == b"data"
    assert body(s3, bucket, "f") == b"data"
    m.remount()
    assert not [x for x in os.listxattr(m.path / "f") if not x.startswith("user.s3vfs.")]


def test_statfs(mount, bucket):
    m = mount(bucket)
    sv = os.statvfs(m.path)
    assert sv.f_namemax == 255
    assert sv.f_bsize > 0 and sv.f_frsize > 0
    assert sv.f_blocks > 0 and sv.f_bavail > 0 and sv.f_bfree >= sv.f_bavail
    out = subprocess.run(["df", "-P", str(m.path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_access(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    m = mount(bucket)
    assert os.access(m.path / "plain", os.R_OK | os.W_OK)
    assert not os.access(m.path / "plain", os.X_OK)  # 0644: no x bit even for root
    os.chmod(m.path / "plain", 0o755)
    assert os.access(m.path / "plain", os.X_OK)
    assert os.access(m.path, os.R_OK | os.W_OK | os.X_OK)
    assert not os.access(m.path / "missing", os.F_OK)


def test_hard_link_is_eperm(mount, s3, bucket):
    m = mount(bucket)
    (m.path / "f").write_bytes(b"f")
    with raises_errno(errno.EPERM):
        os.link(m.path / "f", m.path / "g")
    assert keys(s3, bucket) == ["f"]


# --- errnos ----------------------------------------------------------------------------------

def test_errnos_enoent_eexist_enotdir_eisdir(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="boto-file", Body=b"b")
    m = mount(bucket)
    p = m.path
    (p / "file").write_bytes(b"f")
    os.mkdir(p / "dir")

    # ENOENT
    for fn in (lambda: os.stat(p / "missing"), lambda: os.open(p / "missing", os.O_RDONLY),
               lambda: os.unlink(p / "missing"), lambda: os.rmdir(p / "missing"),
               lambda: os.listdir(p / "missing"), lambda: os.readlink(p / "missing"),
               lambda: os.rename(p / "missing", p / "x"),
               lambda: os.open(p / "missing" / "x", os.O_WRONLY | os.O_CREAT, 0o644),
               lambda: os.mkdir(p / "missing" / "x"), lambda: os.chmod(p / "missing", 0o600),
               lambda: os.getxattr(p / "missing", "user.x")):
        with raises_errno(errno.ENOENT):
            fn()
    # EEXIST
    for fn in (lambda: os.open(p / "file", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644),
               lambda: os.open(p / "boto-file", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644),
               lambda: os.open(p / "dir", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644),
               lambda: os.mkdir(p / "dir"), lambda: os.mkdir(p / "file"),
               lambda: os.symlink("t", p / "file")):
        with raises_errno(errno.EEXIST):
            fn()
    # ENOTDIR
    for fn in (lambda: os.stat(p / "file" / "x"), lambda: os.listdir(p / "file"),
               lambda: os.mkdir(p / "file" / "x"), lambda: os.rmdir(p / "file"),
               lambda: os.open(p / "file" / "x", os.O_WRONLY | os.O_CREAT, 0o644),
               lambda: os.rename(p / "dir", p / "file"),
               lambda: os.open(p / "file", os.O_RDONLY | os.O_DIRECTORY)):
        with raises_errno(errno.ENOTDIR):
            fn()
    # EISDIR
    for fn in (lambda: os.open(p / "dir", os.O_WRONLY), lambda: os.open(p / "dir", os.O_RDWR),
               lambda: os.unlink(p / "dir"), lambda: os.rename(p / "file", p / "dir")):
        with raises_errno(errno.EISDIR):
            fn()
    # nothing above changed the bucket
    assert keys(s3, bucket) == ["boto-file", "dir/", "file"]


def test_eacces_for_another_user(mount, s3, bucket):
    m = mount(bucket, opts={"allow_other": True})
    (m.path / "secret").write_bytes(b"s")
    os.chmod(m.path / "secret", 0o600)
    (m.path / "public").write_bytes(b"public")
    os.chmod(m.path / "public", 0o644)
    os.mkdir(m.path / "closed", 0o700)
    assert stat.S_IMODE(os.stat(m.path).st_mode) & 0o005 == 0o005  # others may search the root

    # the test's tmp_path is not searchable by others: the child gets a descriptor of the root
    script = r"""
import errno, json, os, sys
d = int(sys.argv[1])
def attempt(fn):
    try:
        r = fn()
        return "ok:" + (r.decode() if isinstance(r, bytes) else "")
    except OSError as e:
        return errno.errorcode[e.errno]
def read(name):
    fd = os.open(name, os.O_RDONLY, dir_fd=d)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)
def openw(name, flags=os.O_WRONLY):
    os.close(os.open(name, flags, 0o644, dir_fd=d))
print(json.dumps({
    "uid": os.getuid(),
    "read public": attempt(lambda: read("public")),
    "read secret": attempt(lambda: read("secret")),
    "write public": attempt(lambda: openw("public")),
    "create in root": attempt(lambda: openw("new", os.O_WRONLY | os.O_CREAT)),
    "unlink public": attempt(lambda: os.unlink("public", dir_fd=d)),
    "mkdir in root": attempt(lambda: os.mkdir("nd", dir_fd=d)),
    "list closed": attempt(lambda: os.listdir(os.open("closed", os.O_RDONLY, dir_fd=d))),
    "chmod public": attempt(lambda: os.chmod("public", 0o666, dir_fd=d)),
}))
"""
    dfd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            sys.executable, "-c", script, str(dfd)], pass_fds=(dfd,),
                           capture_output=True, text=True, timeout=60)
    finally:
        os.close(dfd)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == {"uid": 65534, "read public": "ok:public", "read secret": "EACCES",
                   "write public": "EACCES", "create in root": "EACCES",
                   "unlink public": "EACCES", "mkdir in root": "EACCES",
                   "list closed": "EACCES", "chmod public": "EPERM"}
    assert keys(s3, bucket) == ["closed/", "public", "secret"]
    assert body(s3, bucket, "public") == b"public"


def test_enametoolong_for_names_over_255_bytes(mount, s3, bucket):
    """Peer bug: a 256-byte name was accepted."""
    m = mount(bucket)
    ok, bad = "n" * 255, "n" * 256
    (m.path / ok).write_bytes(b"255")
    assert body(s3, bucket, ok) == b"255"
    for fn in (lambda: os.open(m.path / bad, os.O_WRONLY | os.O_CREAT, 0o644),
               lambda: os.mkdir(m.path / bad), lambda: os.stat(m.path / bad),
               lambda: os.symlink("t", m.path / bad),
               lambda: os.rename(m.path / ok, m.path / bad)):
        with raises_errno(errno.ENAMETOOLONG):
            fn()
    assert keys(s3, bucket) == [ok]


def test_enametoolong_for_keys_over_1024_bytes(mount, s3, bucket):
    """Peer bug: a key over 1,024 bytes was silently dropped instead of failing the write.
    S3 allows keys of up to 1,024 bytes, so 1,024 must work (RGW too)."""
    m = mount(bucket)
    # 4 directories of 200 bytes make a key prefix of 804 bytes
    deep = m.path
    prefix = ""
    for c in "ABCD":
        deep = deep / (c * 200)
        prefix += c * 200 + "/"
        os.mkdir(deep)
    assert len(prefix) == 804
    (m.path / "top").write_bytes(b"t")

    with raises_errno(errno.ENAMETOOLONG):
        os.open(deep / ("g" * 221), os.O_WRONLY | os.O_CREAT, 0o644)   # a key of 1025 bytes
    with raises_errno(errno.ENAMETOOLONG):
        os.mkdir(deep / ("h" * 220))                  # a marker "…/hhh/" of 1025 bytes
    with raises_errno(errno.ENAMETOOLONG):
        os.rename(m.path / "top", deep / ("i" * 221))
    with raises_errno(errno.ENAMETOOLONG):
        os.symlink("t", deep / ("j" * 221))
    (deep / "short").write_bytes(b"s")
    assert key_lengths(s3, bucket) == [3, 201, 402, 603, 804, 809]

    # exactly 1024 bytes: allowed
    (deep / ("f" * 220)).write_bytes(b"1024")        # a key of 1024 bytes
    assert body(s3, bucket, prefix + "f" * 220) == b"1024"
    os.mkdir(deep / ("e" * 219))                      # a marker "…/eee/" of 1024 bytes
    assert head(s3, bucket, prefix + "e" * 219 + "/") is not None
    assert sorted(os.listdir(deep)) == ["e" * 219, "f" * 220, "short"]
    assert (deep / ("f" * 220)).read_bytes() == b"1024"
    s3.put_object(Bucket=bucket, Key=prefix + "b" * 220, Body=b"boto3")  # written by others
    r = mount(bucket)
    rdeep = r.path / prefix
    assert sorted(os.listdir(rdeep)) == ["b" * 220, "e" * 219, "f" * 220, "short"]
    assert (rdeep / ("b" * 220)).read_bytes() == b"boto3"
    assert os.stat(rdeep / ("f" * 220)).st_size == 4


def test_directory_rename_over_the_key_limit_moves_nothing(mount, s3, bucket):
    """A directory whose move would push a key inside it over 1024 bytes (its own marker
    would fit): ENAMETOOLONG before anything is copied, not a half-moved tree."""
    m = mount(bucket)
    deep = m.path
    for c in "ABCD":
        deep = deep / (c * 200)
        os.mkdir(deep)                                # "AAA/BBB/CCC/DDD/": 804 bytes
    os.mkdir(m.path / "mv")
    (m.path / "mv" / "a").write_bytes(b"a")
    (m.path / "mv" / ("x" * 200)).write_bytes(b"x")
    before = keys(s3, bucket)
    with raises_errno(errno.ENAMETOOLONG):
        os.rename(m.path / "mv", deep / ("k" * 20))   # "…/kkk/xxx…" would be 1025 bytes
    assert keys(s3, bucket) == before, key_lengths(s3, bucket, verbose=True)
    assert sorted(os.listdir(m.path / "mv")) == ["a", "x" * 200]
    assert os.listdir(deep) == []
    os.rename(m.path / "mv", deep / ("k" * 19))      # every key fits (the longest: 1024)
    assert key_lengths(s3, bucket) == [201, 402, 603, 804, 824, 825, 1024]
    assert body(s3, bucket, deep.relative_to(m.path).as_posix() + "/" + "k" * 19 + "/"
                + "x" * 200) == b"x"


def test_erofs_on_a_read_only_mount(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="f", Body=b"f")
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"x")
    m = mount(bucket, opts={"ro": True})
    p = m.path
    assert (p / "f").read_bytes() == b"f"
    assert os.listdir(p / "d") == ["x"]
    assert not os.access(p / "f", os.W_OK)
    for fn in (lambda: os.open(p / "new", os.O_WRONLY | os.O_CREAT, 0o644),
               lambda: os.open(p / "f", os.O_WRONLY), lambda: os.open(p / "f", os.O_RDWR),
               lambda: os.mkdir(p / "nd"), lambda: os.unlink(p / "f"),
               lambda: os.rmdir(p / "d"), lambda: os.rename(p / "f", p / "g"),
               lambda: os.chmod(p / "f", 0o600), lambda: os.chown(p / "f", 1, 1),
               lambda: os.utime(p / "f", (1, 1)), lambda: os.truncate(p / "f", 0),
               lambda: os.symlink("t", p / "l"), lambda: os.setxattr(p / "f", "user.a", b"1"),
               lambda: os.removexattr(p / "f", "user.a")):
        with raises_errno(errno.EROFS):
            fn()
    assert keys(s3, bucket) == ["d/x", "f"]
    assert body(s3, bucket, "f") == b"f"


# --- bugs the peers have ---------------------------------------------------------------------

def test_create_opened_read_only_is_saved(mount, s3, bucket):
    m = mount(bucket)
    fd = os.open(m.path / "ro-created", os.O_RDONLY | os.O_CREAT, 0o644)
    os.close(fd)
    h = head(s3, bucket, "ro-created")
    assert h is not None, "a file created with O_CREAT|O_RDONLY was not saved"
    assert h["ContentLength"] == 0
    assert meta_mode(h["Metadata"]) == stat.S_IFREG | 0o644
    m.remount()
    assert os.stat(m.path / "ro-created").st_size == 0


def test_mode_0000_file_is_saved(mount, s3, bucket):
    m = mount(bucket)
    fd = os.open(m.path / "m0", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000)
    try:
        os.write(fd, b"zero mode")
    finally:
        os.close(fd)
    assert body(s3, bucket, "m0") == b"zero mode"
    assert meta_mode(meta(s3, bucket, "m0")) == stat.S_IFREG
    fd = os.open(m.path / "m0-empty", os.O_WRONLY | os.O_CREAT, 0o000)
    os.close(fd)
    assert head(s3, bucket, "m0-empty") is not None
    r = mount(bucket)
    assert stat.S_IMODE(os.stat(r.path / "m0").st_mode) == 0
    assert (r.path / "m0").read_bytes() == b"zero mode"  # root may read it


def test_unmount_returns_after_the_data_reached_s3(mount, s3, bucket):
    m = mount(bucket, opts={"multipart_threshold": 5 * MIB, "part_size": 5 * MIB})
    files = {f"small{i}": rand(1000 + i, 20 + i) for i in range(10)}
    files["big"] = rand(12 * MIB + 1, 30)
    files["empty"] = b""  # created and closed, never written
    for name, data in files.items():
        write_file(m.path / name, data)
    m.unmount()  # at once
    for name, data in files.items():
        assert body(s3, bucket, name) == data, name


def test_empty_directories_survive_remount(mount, s3, bucket):
    m = mount(bucket)
    os.mkdir(m.path / "empty")
    os.makedirs(m.path / "a" / "b" / "c")
    m.remount()
    assert sorted(os.listdir(m.path)) == ["a", "empty"]
    assert os.listdir(m.path / "a" / "b") == ["c"]
    assert os.listdir(m.path / "a" / "b" / "c") == []
    r = mount(bucket)  # a fresh cache
    assert sorted(os.listdir(r.path)) == ["a", "empty"]
    assert os.listdir(r.path / "empty") == []
    assert stat.S_ISDIR(os.stat(r.path / "a" / "b" / "c").st_mode)


def test_names_with_tab_and_newline_round_trip(mount, s3, bucket):
    names = ["tab\there", "new\nline", "both\t\n", "\tlead", "trail\n"]
    s3.put_object(Bucket=bucket, Key="boto\tdir\n/in\tside", Body=b"boto")
    m = mount(bucket)
    for n in names:
        (m.path / n).write_bytes(n.encode())
    os.mkdir(m.path / "dir\twith\ntab")
    (m.path / "dir\twith\ntab" / "x\ty").write_bytes(b"inner")
    os.rename(m.path / "tab\there", m.path / "renamed\tto\n")
    want = sorted(names[1:] + ["renamed\tto\n"])
    assert keys(s3, bucket) == sorted(want + ["boto\tdir\n/in\tside", "dir\twith\ntab/",
                                              "dir\twith\ntab/x\ty"])
    for n in names[1:]:
        assert body(s3, bucket, n) == n.encode(), repr(n)
    r = mount(bucket)
    assert sorted(os.listdir(r.path)) == sorted(want + ["boto\tdir\n", "dir\twith\ntab"])
    assert os.listdir(r.path / "boto\tdir\n") == ["in\tside"]
    assert (r.path / "boto\tdir\n" / "in\tside").read_bytes() == b"boto"
    assert (r.path / "dir\twith\ntab" / "x\ty").read_bytes() == b"inner"
    assert (r.path / "renamed\tto\n").read_bytes() == b"tab\there"


def test_change_by_another_client_visible_after_stat_ttl(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"version 1")
    m = mount(bucket, opts={"stat_ttl": 2})
    assert (m.path / "page.html").read_bytes() == b"version 1"
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"version 2, longer")
    s3.put_object(Bucket=bucket, Key="added", Body=b"new")
    time.sleep(2.5)
    assert (m.path / "page.html").read_bytes() == b"version 2, longer"
    assert os.stat(m.path / "page.html").st_size == len(b"version 2, longer")
    assert sorted(os.listdir(m.path)) == ["added", "page.html"]
    s3.delete_object(Bucket=bucket, Key="added")
    time.sleep(2.5)
    with raises_errno(errno.ENOENT):
        os.stat(m.path / "added")


# --- request budgets (exact, from the mount's statistics) ------------------------------------

def put_many(rgw_server, bucket, keys_: list[str], body_: bytes = b"") -> None:
    c = rgw_server.client(max_pool_connections=32)
    with ThreadPoolExecutor(32) as ex:
        list(ex.map(lambda k: c.put_object(Bucket=bucket, Key=k, Body=body_), keys_))


def test_budget_cold_ls_l_of_1000_objects_and_after_remount(mount, rgw_server, bucket):
    """ls -l = readdir, then lstat of each entry. Cold: the LIST page and no HEAD. After a
    remount on the same cache dir, past stat_ttl, an unchanged directory: the LIST page only.
    Every count is measured before any is asserted, so that a failure reports them all."""
    names = [f"obj{i:04d}" for i in range(1000)]
    put_many(rgw_server, bucket, [f"many/{n}" for n in names], b"0123456789")
    m = mount(bucket, opts={"stat_ttl": 5})
    d = m.path / "many"

    def ls_l_counted() -> tuple[dict, dict, dict]:
        before = requests(m)
        t0 = time.monotonic()
        listed = os.listdir(d)
        readdir = delta(m, before)
        got = {n: os.lstat(d / n) for n in listed}
        whole = delta(m, before)
        assert time.monotonic() - t0 < 5, "ls -l outlived stat_ttl: the counts are not exact"
        assert sorted(got) == names
        assert all(st.st_size == 10 and stat.S_ISREG(st.st_mode) for st in got.values())
        lstats = {k: v - readdir.get(k, 0) for k, v in whole.items() if v - readdir.get(k, 0)}
        return readdir, lstats, whole

    before = requests(m)
    assert stat.S_ISDIR(os.stat(d).st_mode)
    lookup = delta(m, before)
    cold = ls_l_counted()

    m.remount()  # same cache_dir, unchanged bucket
    time.sleep(5.5)  # what the cache holds is past stat_ttl: one revalidating LIST is due
    before = requests(m)
    os.stat(d)
    lookup2 = delta(m, before)
    warm = ls_l_counted()
    report = (f"cold: stat of the directory {lookup}, readdir {cold[0]}, 1000 lstats "
              f"{cold[1]}; after remount: stat of the directory {lookup2}, readdir {warm[0]}, "
              f"1000 lstats {warm[1]}")
    print(report)
    assert (cold[2], warm[2]) == ({"list": 1, "total": 1}, {"list": 1, "total": 1}), report


def test_budget_100_stats_and_opens_within_stat_ttl(mount, s3, bucket):
    """Within stat_ttl: 100 stats and 100 open+read+close of a file cost nothing; after it,
    one conditional revalidation. Measured before asserted."""
    s3.put_object(Bucket=bucket, Key="hot.txt", Body=b"hot content")
    m = mount(bucket, opts={"stat_ttl": 5})
    p = m.path / "hot.txt"
    os.stat(p)
    assert p.read_bytes() == b"hot content"
    before = requests(m)
    for _ in range(100):
        os.stat(p)
    stats = delta(m, before)
    before = requests(m)
    for _ in range(100):
        with open(p, "rb") as f:
            assert f.read() == b"hot content"
    opens = delta(m, before)

    time.sleep(5.5)  # past stat_ttl: one conditional revalidation, then quiet again
    before = requests(m)
    for _ in range(100):
        os.stat(p)
    after_ttl = delta(m, before)
    report = (f"100 stats: {stats}; 100 open+read+close: {opens}; "
              f"100 stats after stat_ttl: {after_ttl}")
    print(report)
    assert (stats, opens, after_ttl.get("total")) == ({}, {}, 1), report


def test_budget_100_new_files_in_a_listed_directory(mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/existing", Body=b"e")
    m = mount(bucket, opts={"stat_ttl": 120})
    assert os.listdir(m.path / "dir") == ["existing"]
    before = requests(m)
    for i in range(100):
        with open(m.path / "dir" / f"new{i:03d}", "wb") as f:
            f.write(b"small %d" % i)
    d = delta(m, before)
    print(f"creating 100 small files: {d}")
    assert d == {"put": 100, "total": 100}, f"creating 100 small files: {d}"
    assert len(keys(s3, bucket, "dir/")) == 101


# --- durability: the mount cut off from S3 ---------------------------------------------------

# what the daemon may log while S3 is unreachable
DOWN_LOG_ALLOW = (
    r" warn: upload: \S+ failed \(transport error ",
    r" error: upload of \S+ failed: Input/output error \(kept; it will be retried",
    r" error: /\S+: upload at release failed$",
    r" warn: upload: pending upload of \S+ failed again: transport error ",
)


def _write_while_down(m, proxy, s3, bucket, files: dict[str, bytes]) -> None:
    """With the proxy down, each file's close() must fail with EIO, nothing may appear in S3,
    and every file must be recorded as pending."""
    os.listdir(m.path)  # the root's listing is complete: new names need no request
    proxy.down()
    for name, data in files.items():
        fd = os.open(m.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        with raises_errno(errno.EIO):
            bounded(lambda: os.close(fd), 90, f"close() of {name} with S3 unreachable")
    assert proxy.refused > 0, "the mount never tried to reach S3"
    for name in files:
        assert head(s3, bucket, name) is None, f"{name} is visible although its upload failed"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    st = m.stats()
    assert st["pending_uploads"] == len(files), st


def _arrives(s3, bucket, files: dict[str, bytes], timeout: float) -> None:
    def done():
        for name, data in files.items():
            h = head(s3, bucket, name)
            if h is None:
                return False
            got = body(s3, bucket, name)
            assert got == data, f"{name}: a partial or wrong object became visible " \
                                f"({len(got)} bytes, want {len(data)})"
        return True
    wait_until(done, timeout, f"pending uploads {sorted(files)} reaching S3")


def test_failed_upload_is_eio_pending_and_retried(mount, s3, bucket, proxy):
    m = mount(bucket, opts={"endpoint": proxy.endpoint, "stat_ttl": 600,
                                  "multipart_threshold": 5 * MIB, "part_size": 5 * MIB},
                    allow_log=DOWN_LOG_ALLOW)
    files = {"small.bin": rand(300_000, 40), "multi.bin": rand(6 * MIB + 3, 41)}
    _write_while_down(m, proxy, s3, bucket, files)
    time.sleep(6)  # a background round while S3 is still unreachable changes nothing
    for name in files:
        assert head(s3, bucket, name) is None, name
    assert m.stats()["pending_uploads"] == len(files)

    proxy.up()
    _arrives(s3, bucket, files, 60)
    wait_until(lambda: m.stats()["pending_uploads"] == 0, 30, "pending_uploads back to 0")
    for name, data in files.items():  # and the mount shows what it uploaded
        assert os.stat(m.path / name).st_size == len(data), name
        assert (m.path / name).read_bytes() == data, name
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_unmount_uploads_pending_data_before_it_returns(mount, s3, bucket, proxy):
    m = mount(bucket, opts={"endpoint": proxy.endpoint, "stat_ttl": 600},
                    allow_log=DOWN_LOG_ALLOW)
    files = {"p.bin": rand(100_000, 42)}
    _write_while_down(m, proxy, s3, bucket, files)
    proxy.up()
    m.unmount()  # at once, before the background retry: the drain must upload it
    for name, data in files.items():
        assert body(s3, bucket, name) == data


def test_pending_upload_resumes_on_the_next_mount(mount, s3, bucket, proxy):
    opts = {"endpoint": proxy.endpoint, "stat_ttl": 600}
    m = mount(bucket, opts=opts, allow_log=DOWN_LOG_ALLOW)
    files = {"crash.bin": rand(200_000, 43)}
    _write_while_down(m, proxy, s3, bucket, files)
    m.proc.kill()  # a crash: no drain
    m.proc.wait(10)
    m.cleanup()
    proxy.up()
    assert head(s3, bucket, "crash.bin") is None
    m2 = mount(bucket, opts=opts, cache_dir=m.cache_dir, allow_log=DOWN_LOG_ALLOW)
    _arrives(s3, bucket, files, 60)
    assert os.stat(m2.path / "crash.bin").st_size == len(files["crash.bin"])
    assert (m2.path / "crash.bin").read_bytes() == files["crash.bin"]


# --- large -----------------------------------------------------------------------------------

BIG_OPTS = {"multipart_threshold": 16 * MIB, "part_size": 8 * MIB}


def test_200mib_file_across_remount(mount, s3, bucket):
    size = 200 * MIB
    m = mount(bucket, opts=BIG_OPTS)
    h = hashlib.sha256()
    rng = random.Random(50)
    fd = os.open(m.path / "big.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for _ in range(size // MIB):
            chunk = rng.randbytes(MIB)
            h.update(chunk)
            assert os.write(fd, chunk) == MIB
    finally:
        os.close(fd)
    want = h.hexdigest()
    hd = s3.head_object(Bucket=bucket, Key="big.bin")
    assert hd["ContentLength"] == size
    assert hd["ETag"].strip('"').endswith("-25"), hd["ETag"]  # 25 parts of 8 MiB

    m.remount()
    assert file_sha(m.path / "big.bin") == (want, size)
    m.unmount()
    r = mount(bucket, opts=BIG_OPTS)  # a fresh cache: every byte from S3
    assert file_sha(r.path / "big.bin") == (want, size)
    assert r.requests("get") > 0


@pytest.mark.parametrize("order", ["sequential", "backwards"])
def test_files_at_part_size_boundaries(mount, s3, bucket, order):
    ps = 5 * MIB
    m = mount(bucket, opts={"multipart_threshold": ps, "part_size": ps,
                                  "parallel_count": 2})
    sizes = {"ps-1": ps - 1, "ps": ps, "ps+1": ps + 1, "2ps": 2 * ps, "2ps+1": 2 * ps + 1}
    data = {name: rand(n, n) for name, n in sizes.items()}
    for name, d in data.items():
        if order == "sequential":
            write_file(m.path / name, d, chunk=MIB)
        else:  # 1 MiB blocks from the last to the first: uploaded at close, not streamed
            fd = os.open(m.path / name, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for off in reversed(range(0, len(d), MIB)):
                    os.pwrite(fd, d[off:off + MIB], off)
            finally:
                os.close(fd)
    for name, d in data.items():
        got = body(s3, bucket, name)
        assert len(got) == len(d) and got == d, name
    etags = {n: s3.head_object(Bucket=bucket, Key=n)["ETag"].strip('"') for n in sizes}
    assert "-" not in etags["ps-1"], etags
    assert etags["ps+1"].endswith("-2") and etags["2ps"].endswith("-2"), etags
    assert etags["2ps+1"].endswith("-3"), etags
    r = mount(bucket)
    for name, d in data.items():
        assert (r.path / name).read_bytes() == d, name


def test_10000_entry_directory_listed_completely(mount, rgw_server, s3, bucket):
    names = [f"e{i:05d}" for i in range(10000)]
    put_many(rgw_server, bucket, [f"big/{n}" for n in names])
    m = mount(bucket)
    os.stat(m.path / "big")
    before = requests(m)
    got = os.listdir(m.path / "big")
    d = delta(m, before)
    assert len(got) == 10000 and set(got) == set(names)
    print(f"listing 10,000 entries: {d}")
    assert d.get("list") == 10 and d.get("head", 0) == 0, d
    assert len(os.listdir(m.path / "big")) == 10000  # again, from the cache


WRITER = r"""
import hashlib, os, random, sys
path, seed, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
h = hashlib.sha256()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
left = size
while left:
    chunk = rng.randbytes(min(left, 1 << 20))
    os.write(fd, chunk)
    h.update(chunk)
    left -= len(chunk)
os.close(fd)
print(h.hexdigest())
"""


def test_two_processes_write_different_files_at_once(mount, s3, bucket):
    m = mount(bucket, opts={"multipart_threshold": 5 * MIB, "part_size": 5 * MIB})
    size = 12 * MIB + 99
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(m.path / f"w{i}.bin"),
                               str(60 + i), str(size)], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    shas = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            shas.append(out.strip())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert shas[0] != shas[1]
    for i, want in enumerate(shas):
        got = body(s3, bucket, f"w{i}.bin")
        assert len(got) == size and sha(got) == want, i
        assert file_sha(m.path / f"w{i}.bin") == (want, size)
