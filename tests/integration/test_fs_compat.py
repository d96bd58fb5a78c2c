# SPDX-License-Identifier: MIT
"""s3vfs and s3fs-fuse on the same bucket, both ways, with boto3 as the referee.

A user must be able to switch a bucket between s3fs and s3vfs (DESIGN.md, "Object mapping").
Each test writes through one mount, checks with boto3 the objects that land in the bucket,
then mounts the other filesystem afresh (so no cache of the reader predates the writes) and
reads through it. The directions are the test ids `s3vfs-to-s3fs` and `s3fs-to-s3vfs`; objects
written by boto3 itself are read by both. Every mount is unmounted cleanly at the end (exit
status 0, clean log), see the s3vfs_mount / s3fs_mount fixtures in conftest.py.

What Debian's s3fs 1.90 writes on RGW (observed with -o use_xattr, as root; all values are
decimal strings; boto3 shows them as head_object()["Metadata"] without "x-amz-meta-"):

  file (open/write/close), Content-Type from /etc/mime.types ("application/octet-stream"
  for a name without extension):
      x-amz-meta-mode: 33188            (0o100644: st_mode WITH the type bits)
      x-amz-meta-uid: 0                 x-amz-meta-gid: 0
      x-amz-meta-mtime: 1795291079      x-amz-meta-ctime: 1795291079
      x-amz-meta-atime: 1795291079
  chmod 0640 / 0755 of a file:  x-amz-meta-mode: 33184 / 33261 (0o100640 / 0o100755)
  chown 1234:2345:              x-amz-meta-uid: 1234, x-amz-meta-gid: 2345
  utime(atime=1500000000, mtime=1600000000):
      x-amz-meta-mtime: 1600000000, x-amz-meta-atime: 1500000000,
      x-amz-meta-ctime: 1500000000      (sic: s3fs sets ctime to the new atime)
  utime with nanoseconds (1500000000.25, 1600000000.75):
      x-amz-meta-mtime: 1600000000.750000000   (nine fraction digits)
      x-amz-meta-atime: 1500000000.250000000   x-amz-meta-ctime: 1500000000.250000000
  mkdir d (mode 0755): object "d/", 0 bytes, Content-Type: application/x-directory,
      x-amz-meta-mode: 493              (0o755: WITHOUT S_IFDIR; also after chown/utime/xattr)
  chmod 0700 of that directory: x-amz-meta-mode: 16832 (0o040700: now WITH S_IFDIR)
  symlink -> "../target/x": object body "../target/x" (11 bytes),
      Content-Type: application/octet-stream, x-amz-meta-mode: 41471 (0o120777)
  setxattr user.foo=b"bar":
      x-amz-meta-xattr: %7B%22user.foo%22%3A%22YmFy%22%7D
      i.e. percent-encoded JSON {"user.foo":"YmFy"}, the value in base64
  setxattr user.bin=b"\\x00\\xff\\x01\\n\\r\\"\\\\" as well (names sorted, ',' is %2C):
      x-amz-meta-xattr: %7B%22user.bin%22%3A%22AP8BCg0iXA%3D%3D%22%2C%22user.foo%22%3A%22YmFy%22%7D
  on a directory: the same header on its "d/" object (%7B%22user.dir%22%3A%22ZHY%3D%22%7D).
  removexattr of one name among several rewrites the header without it; removexattr of the
      LAST name is a silent no-op in s3fs 1.90 (the header stays, listxattr still shows it).
  setxattr with an empty value returns 0 but stores nothing
      ("[ERR] s3fs.cpp:s3fs_setxattr(2974): Wrong parameter: value(...), size(0)").
  The first setxattr on an object logs "[WAN] s3fs.cpp:parse_xattrs(2863): xattr header()
      is not json format." (the header is absent). Without -o use_xattr, setxattr is ENOTSUP.

How s3fs 1.90 shows objects without metadata (written by boto3), mounted without options:
  regular file 0640, uid/gid of the s3fs process, mtime = Last-Modified; implicit directory
  (a key "deep/a/b/c.txt" only) 0750, mtime -1 (1969-12-31), no marker object created.
  With -o uid=,gid=,umask= s3fs OVERRIDES the attributes of every object, metadata or not
  (umask=022 shows every file and directory as 0755), so compatibility tests never pass them.

Where s3fs 1.90 breaks (so these are s3vfs-only tests): a key with an XML-invalid control
character ("ctl\\x01") makes the listing of its directory fail with EIO ("xmlReadMemory
returns with error"); keys such as "dir//c", "dir/./z", "dir/../w", "dir/a//b" show up as
bogus entries ("a", "dir") whose stat is ENOENT, and s3fs logs [ERR] lines about 403s of
"dir/./" and "dir/../".
"""
import base64
import errno
import hashlib
import json
import os
import stat
import subprocess
import urllib.parse
from collections import Counter

import pytest

MIB = 1024 * 1024

direction = pytest.mark.parametrize("writer,reader", [
    pytest.param("s3vfs", "s3fs", id="s3vfs-to-s3fs"),
    pytest.param("s3fs", "s3vfs", id="s3fs-to-s3vfs"),
])
each_reader = pytest.mark.parametrize("reader", ["s3vfs", "s3fs"])


@pytest.fixture(autouse=True)
def _umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def mount(s3vfs_mount, s3fs_mount):
    """mount(kind, bucket, opts=None): a fresh mount of the bucket by "s3vfs" or "s3fs"."""
    def mount(kind: str, bucket: str, opts: dict | None = None):
        return {"s3vfs": s3vfs_mount, "s3fs": s3fs_mount}[kind](bucket, opts=opts)
    return mount


def keys(s3, bucket) -> list[str]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def meta(s3, bucket, key) -> dict[str, str]:
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"]


def body(s3, bucket, key) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def seconds(value: str) -> int:
    """Whole seconds of a time as s3fs writes it: "1600000000" or "1600000000.750000000"."""
    return int(value.split(".")[0])


def decode_xattrs(value: str) -> dict[str, bytes]:
    """x-amz-meta-xattr as s3fs encodes it: percent-encoded JSON {name: base64(value)}."""
    assert not set('{}":,') & set(value), f"x-amz-meta-xattr is not percent-encoded: {value!r}"
    doc = json.loads(urllib.parse.unquote(value))
    return {name: base64.b64decode(v, validate=True) for name, v in doc.items()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- attributes ------------------------------------------------------------------------------

@direction
def test_modes(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    for name, perm in (("f640", 0o640), ("f755", 0o755)):
        (w.path / name).write_bytes(name.encode())
        os.chmod(w.path / name, perm)
    os.mkdir(w.path / "d700", 0o755)
    os.chmod(w.path / "d700", 0o700)

    assert meta(s3, bucket, "f640")["mode"] == "33184"  # S_IFREG | 0o640
    assert meta(s3, bucket, "f755")["mode"] == "33261"  # S_IFREG | 0o755
    assert meta(s3, bucket, "d700/")["mode"] == "16832"  # S_IFDIR | 0o700

    r = mount(reader, bucket)
    assert os.stat(r.path / "f640").st_mode == stat.S_IFREG | 0o640
    assert os.stat(r.path / "f755").st_mode == stat.S_IFREG | 0o755
    assert os.stat(r.path / "d700").st_mode == stat.S_IFDIR | 0o700
    assert (r.path / "f755").read_bytes() == b"f755"


@direction
def test_owners(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    (w.path / "owned").write_bytes(b"o")
    os.chown(w.path / "owned", 1234, 2345)
    os.mkdir(w.path / "owned-dir")
    os.chown(w.path / "owned-dir", 1234, 2345)
    (w.path / "group-only").write_bytes(b"g")
    os.chown(w.path / "group-only", -1, 3456)  # the uid stays the creator's: root

    for key in ("owned", "owned-dir/"):
        m = meta(s3, bucket, key)
        assert (m["uid"], m["gid"]) == ("1234", "2345"), key
    m = meta(s3, bucket, "group-only")
    assert (m["uid"], m["gid"]) == ("0", "3456")

    r = mount(reader, bucket)
    for name in ("owned", "owned-dir"):
        st = os.stat(r.path / name)
        assert (st.st_uid, st.st_gid) == (1234, 2345), name
    st = os.stat(r.path / "group-only")
    assert (st.st_uid, st.st_gid) == (0, 3456)
    assert stat.S_ISDIR(os.stat(r.path / "owned-dir").st_mode)
    assert (r.path / "owned").read_bytes() == b"o"


@direction
def test_mtimes(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    (w.path / "f").write_bytes(b"timed")
    os.utime(w.path / "f", ns=(1_500_000_000_250_000_000, 1_600_000_000_750_000_000))
    (w.path / "whole").write_bytes(b"whole seconds")
    os.utime(w.path / "whole", (1_500_000_000, 1_600_000_050))
    os.mkdir(w.path / "d")
    os.utime(w.path / "d", (1_500_000_000, 1_600_000_100))

    assert seconds(meta(s3, bucket, "f")["mtime"]) == 1_600_000_000
    assert seconds(meta(s3, bucket, "whole")["mtime"]) == 1_600_000_050
    assert seconds(meta(s3, bucket, "d/")["mtime"]) == 1_600_000_100

    r = mount(reader, bucket)
    assert (r.path / "f").read_bytes() == b"timed"  # reading does not change the mtime
    assert os.stat(r.path / "f").st_mtime_ns // 10**9 == 1_600_000_000
    assert os.stat(r.path / "whole").st_mtime_ns // 10**9 == 1_600_000_050
    assert os.stat(r.path / "d").st_mtime_ns // 10**9 == 1_600_000_100


@direction
def test_symlinks(mount, s3, bucket, writer, reader):
    links = {"rel": "../target/x", "abs": "/abs/target with space", "sub/up": ".."}
    w = mount(writer, bucket)
    os.mkdir(w.path / "sub")
    for name, target in links.items():
        os.symlink(target, w.path / name)

    for key, target in links.items():
        assert meta(s3, bucket, key)["mode"] == "41471", key  # S_IFLNK | 0o777
        assert body(s3, bucket, key) == target.encode(), key

    r = mount(reader, bucket)
    for name, target in links.items():
        st = os.lstat(r.path / name)
        assert stat.S_ISLNK(st.st_mode), name
        assert st.st_size == len(target.encode()), name
        assert os.readlink(r.path / name) == target, name
    assert sorted(os.listdir(r.path / "sub" / "up")) == ["abs", "rel", "sub"]


# s3fs writes a new directory's mode without S_IFDIR; s3vfs writes the full st_mode (DESIGN.md)
MKDIR_MODE_WRITTEN = {"s3fs": "493", "s3vfs": "16877"}


@direction
def test_directories(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    os.mkdir(w.path / "empty", 0o755)
    os.makedirs(w.path / "n1" / "n2" / "n3", 0o755)
    (w.path / "n1" / "n2" / "file").write_bytes(b"in n2")

    markers = ["empty/", "n1/", "n1/n2/", "n1/n2/n3/"]
    assert keys(s3, bucket) == sorted(markers + ["n1/n2/file"])
    for key in markers:
        h = s3.head_object(Bucket=bucket, Key=key)
        assert h["ContentLength"] == 0, key
        assert h["ContentType"] == "application/x-directory", key
        assert h["Metadata"]["mode"] == MKDIR_MODE_WRITTEN[writer], key

    w.remount()  # empty directories survive a remount of the writer...
    r = mount(reader, bucket)  # ...and show in the other filesystem
    for m in (w, r):
        assert sorted(os.listdir(m.path)) == ["empty", "n1"]
        assert os.listdir(m.path / "empty") == []
        assert os.listdir(m.path / "n1") == ["n2"]
        assert sorted(os.listdir(m.path / "n1" / "n2")) == ["file", "n3"]
        assert os.listdir(m.path / "n1" / "n2" / "n3") == []
        for d in ("empty", "n1", "n1/n2", "n1/n2/n3"):
            assert os.stat(m.path / d).st_mode == stat.S_IFDIR | 0o755, (m, d)
        assert (m.path / "n1" / "n2" / "file").read_bytes() == b"in n2"

    os.rmdir(r.path / "n1" / "n2" / "n3")
    os.rmdir(r.path / "empty")
    assert keys(s3, bucket) == ["n1/", "n1/n2/", "n1/n2/file"]


XATTRS = {"user.foo": b"bar", "user.bin": bytes([0, 0xFF, 1, 10, 13, 34, 92])}


@direction
def test_xattrs(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    f = w.path / "f"
    f.write_bytes(b"x")
    for name, value in XATTRS.items():
        os.setxattr(f, name, value)
    os.setxattr(f, "user.gone", b"soon")
    os.removexattr(f, "user.gone")
    os.mkdir(w.path / "d")
    os.setxattr(w.path / "d", "user.dir", b"dv")
    os.chmod(f, 0o600)  # rewriting the metadata keeps the xattrs

    m = meta(s3, bucket, "f")
    assert decode_xattrs(m["xattr"]) == XATTRS
    assert m["mode"] == "33152"  # S_IFREG | 0o600
    assert decode_xattrs(meta(s3, bucket, "d/")["xattr"]) == {"user.dir": b"dv"}

    r = mount(reader, bucket)
    assert sorted(os.listxattr(r.path / "f")) == sorted(XATTRS)
    for name, value in XATTRS.items():
        assert os.getxattr(r.path / "f", name) == value, name
    with pytest.raises(OSError) as ei:
        os.getxattr(r.path / "f", "user.gone")
    assert ei.value.errno == errno.ENODATA
    assert os.listxattr(r.path / "d") == ["user.dir"]
    assert os.getxattr(r.path / "d", "user.dir") == b"dv"
    assert os.stat(r.path / "f").st_mode == stat.S_IFREG | 0o600


# --- objects written by boto3 ----------------------------------------------------------------

def test_boto3_objects_get_the_mount_defaults_in_s3vfs(s3vfs_mount, s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain")
    s3.put_object(Bucket=bucket, Key="sub/inner.txt", Body=b"inner")
    s3.put_object(Bucket=bucket, Key="with-meta", Body=b"m", Metadata={
        "mode": "33152", "uid": "1234", "gid": "2345", "mtime": "1600000000"})
    last_modified = int(s3.head_object(Bucket=bucket, Key="plain.txt")["LastModified"]
                        .timestamp())

    m = s3vfs_mount(bucket, opts={"uid": 4321, "gid": 5432, "umask": "022"})
    st = os.stat(m.path / "plain.txt")
    assert st.st_mode == stat.S_IFREG | 0o644
    assert (st.st_uid, st.st_gid, st.st_size) == (4321, 5432, 5)
    assert st.st_mtime_ns // 10**9 == last_modified
    st = os.stat(m.path / "sub")  # implicit directory
    assert st.st_mode == stat.S_IFDIR | 0o755
    assert (st.st_uid, st.st_gid) == (4321, 5432)
    # stored attributes win over the mount's defaults (in s3fs, uid=/gid=/umask= override them)
    st = os.stat(m.path / "with-meta")
    assert st.st_mode == stat.S_IFREG | 0o600
    assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert st.st_mtime_ns // 10**9 == 1_600_000_000
    assert (m.path / "plain.txt").read_bytes() == b"plain"


def test_boto3_objects_get_defaults_in_s3fs(s3fs_mount, s3, bucket):
    """The peer's behaviour, pinned so that a change of the installed s3fs is noticed."""
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain")
    last_modified = int(s3.head_object(Bucket=bucket, Key="plain.txt")["LastModified"]
                        .timestamp())
    m = s3fs_mount(bucket)
    st = os.stat(m.path / "plain.txt")
    assert st.st_mode == stat.S_IFREG | 0o640
    assert (st.st_uid, st.st_gid, st.st_size) == (os.getuid(), os.getgid(), 5)
    assert st.st_mtime_ns // 10**9 == last_modified


@each_reader
def test_implicit_directories(mount, s3, bucket, reader):
    s3.put_object(Bucket=bucket, Key="deep/a/b/c.txt", Body=b"deep")
    r = mount(reader, bucket)
    assert os.listdir(r.path) == ["deep"]
    assert os.listdir(r.path / "deep") == ["a"]
    assert os.listdir(r.path / "deep" / "a") == ["b"]
    assert os.listdir(r.path / "deep" / "a" / "b") == ["c.txt"]
    for d in ("deep", "deep/a", "deep/a/b"):
        assert stat.S_ISDIR(os.stat(r.path / d).st_mode), d
    assert (r.path / "deep" / "a" / "b" / "c.txt").read_bytes() == b"deep"
    with pytest.raises(FileNotFoundError):
        os.stat(r.path / "deep" / "a" / "nope")

    (r.path / "deep" / "a" / "new.txt").write_bytes(b"new")
    assert sorted(os.listdir(r.path / "deep" / "a")) == ["b", "new.txt"]
    # reading and writing inside implicit directories creates no marker objects
    assert keys(s3, bucket) == ["deep/a/b/c.txt", "deep/a/new.txt"]


# --- contents --------------------------------------------------------------------------------

# s3vfs goes multipart above 5 MiB in 5 MiB parts here; s3fs (multipart_size 10 MB by default)
# uploads the 11 MiB file in two parts.
CONTENT_OPTS = {"s3vfs": {"multipart_threshold": 5 * MIB, "part_size": 5 * MIB}, "s3fs": {}}
SIZES = {"empty": 0, "one": 1, "small": 3 * 4096 + 7, "mib-plus-one": MIB + 1,
         "multipart": 11 * MIB + 3}


@direction
def test_contents_byte_exact(mount, s3, bucket, writer, reader):
    rnd = os.urandom(max(SIZES.values()) + 300_000)
    data = {name: rnd[:size] for name, size in SIZES.items()}
    w = mount(writer, bucket, opts=CONTENT_OPTS[writer])
    for name, content in data.items():
        (w.path / name).write_bytes(content)
    # an overwrite in the middle and an append: uploaded whole at close
    patched = bytearray(rnd[-300_000:])
    (w.path / "patched").write_bytes(patched)
    with open(w.path / "patched", "r+b") as f:
        f.seek(100_000)
        f.write(b"PATCH")
    with open(w.path / "patched", "ab") as f:
        f.write(b"TAIL")
    patched[100_000:100_005] = b"PATCH"
    data["patched"] = bytes(patched) + b"TAIL"

    assert keys(s3, bucket) == sorted(data)
    for name, content in data.items():
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["ContentLength"] == len(content), name
        assert sha(got["Body"].read()) == sha(content), name
    if writer == "s3vfs":  # 5 + 5 + 1 MiB: three parts
        assert s3.head_object(Bucket=bucket, Key="multipart")["ETag"].endswith('-3"')

    r = mount(reader, bucket)
    for name, content in data.items():
        assert os.stat(r.path / name).st_size == len(content), name
        assert sha((r.path / name).read_bytes()) == sha(content), name
    with open(r.path / "multipart", "rb") as f:  # a read across the first part boundary
        f.seek(5 * MIB - 10)
        assert f.read(1000) == data["multipart"][5 * MIB - 10:5 * MIB + 990]


# --- names -----------------------------------------------------------------------------------

NAMES = ["with space", " leading space", "trailing space ", "ünïcödé-日本語", "per%cent",
         "%41%2F%zz", "a+plus", "q?mark", "hash#tag", "tab\tname", "new\nline", "cr\rname",
         "amp&lt;<gt>", "quote\"apos'", "back\\slash", "star*", "~tilde", "semi;colon=eq"]
ODD_DIR = "dir ü%#?+&"


@direction
def test_names_round_trip(mount, s3, bucket, writer, reader):
    w = mount(writer, bucket)
    for name in NAMES:
        (w.path / name).write_bytes(name.encode())
    os.mkdir(w.path / ODD_DIR)
    (w.path / ODD_DIR / "inner +&").write_bytes(b"inner")

    assert keys(s3, bucket) == sorted(NAMES + [ODD_DIR + "/", ODD_DIR + "/inner +&"])
    for name in NAMES:
        assert body(s3, bucket, name) == name.encode(), name

    r = mount(reader, bucket)
    assert sorted(os.listdir(r.path)) == sorted(NAMES + [ODD_DIR])
    for name in NAMES:
        assert (r.path / name).read_bytes() == name.encode(), name
    assert os.listdir(r.path / ODD_DIR) == ["inner +&"]
    assert (r.path / ODD_DIR / "inner +&").read_bytes() == b"inner"


@each_reader
def test_names_written_by_boto3(mount, s3, bucket, reader):
    for name in NAMES:
        s3.put_object(Bucket=bucket, Key=f"{ODD_DIR}/{name}", Body=name.encode())
    r = mount(reader, bucket)
    assert os.listdir(r.path) == [ODD_DIR]
    assert sorted(os.listdir(r.path / ODD_DIR)) == sorted(NAMES)
    for name in NAMES:
        assert (r.path / ODD_DIR / name).read_bytes() == name.encode(), name


def test_control_characters_in_names_s3vfs(s3vfs_mount, s3, bucket):
    """XML 1.0 cannot carry \\x01 (s3fs's listing of such a directory fails with EIO): the
    listing must ask for encoding-type=url."""
    names = ["ctl\x01x", "del\x7fx", "esc\x1bx", "plain"]
    try:
        for name in names:
            s3.put_object(Bucket=bucket, Key=f"c/{name}", Body=name.encode())
        m = s3vfs_mount(bucket)
        assert sorted(os.listdir(m.path / "c")) == sorted(names)
        for name in names:
            assert (m.path / "c" / name).read_bytes() == name.encode(), repr(name)
        (m.path / "c" / "new\x02y").write_bytes(b"2")
        assert keys(s3, bucket) == sorted(f"c/{n}" for n in names + ["new\x02y"])
    finally:
        # the bucket fixture's DeleteObjects cannot carry these keys in its XML body
        for key in keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)


def raw_entries(path) -> Counter:
    """Every entry readdir returns, "." and ".." included (os.listdir drops those)."""
    out = subprocess.run(["ls", "-f", "-1", "--quoting-style=c", str(path)], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return Counter(json.loads(line) for line in out.splitlines())


def test_keys_that_cannot_be_names_s3vfs(s3vfs_mount, s3, bucket):
    long_ok, long_bad = "m" * 255, "n" * 256
    good = {"dir/ok.txt": b"ok", f"dir/{long_ok}": b"255 bytes is NAME_MAX"}
    bad = ["dir/a//b", "dir//c", "dir/x/./y", "dir/x/../y", "dir/./z", "dir/../w", "dir/.",
           "dir/..", f"dir/{long_bad}", f"dir/{'L' * 256}/inner", "dir/s/" + "p" * 256]
    for key, content in good.items():
        s3.put_object(Bucket=bucket, Key=key, Body=content)
    for key in bad:
        s3.put_object(Bucket=bucket, Key=key, Body=b"not a name")
    assert len(keys(s3, bucket)) == len(good) + len(bad)  # RGW keeps every one verbatim

    m = s3vfs_mount(bucket)
    d = m.path / "dir"
    assert os.listdir(m.path) == ["dir"]
    # "a", "x" and "s" are directories implied by "dir/a//b", "dir/x/./y", "dir/s/ppp...":
    # they are shown, and empty, as nothing under them is a valid name
    assert sorted(os.listdir(d)) == sorted(["ok.txt", long_ok, "a", "x", "s"])
    entries = raw_entries(d)
    assert entries["."] <= 1 and entries[".."] <= 1  # no extra "." or ".." from the keys
    assert set(entries) - {".", ".."} == {"ok.txt", long_ok, "a", "x", "s"}
    for sub in ("a", "x", "s"):
        assert stat.S_ISDIR(os.stat(d / sub).st_mode), sub
        assert os.listdir(d / sub) == [], sub
    assert (d / "ok.txt").read_bytes() == b"ok"
    assert (d / long_ok).read_bytes() == b"255 bytes is NAME_MAX"
    with pytest.raises(OSError) as ei:
        os.stat(d / long_bad)
    assert ei.value.errno == errno.ENAMETOOLONG
