# SPDX-License-Identifier: MIT
"""Issue 7, "Bad input": hostile servers and hostile names.

Hostile servers: the mount is pointed at a fake S3 (fakes3.py) that answers the start-up HEAD
of the bucket with 200 and some requests with crafted replies: endless or huge bodies,
Content-Length lies, a server that ignores Range, deeply nested XML, billion-laughs and
external entities, invalid UTF-8 keys, absurd sizes, endless pagination, huge error bodies
and headers. Each must end in a clean error (EIO) or a correct answer, never wrong bytes,
within bounded time and memory (the daemon's VmRSS stays under 200 MiB), and the daemon
stays alive and keeps serving the sane files.

Hostile names (real RGW, keys put with boto3): `..`, `.`, `/./`, leading and double
slashes, control characters, sibling prefixes, long keys. A prefix mount never shows or
opens anything outside its prefix, never writes outside it or outside its cache directory,
and its listings keep working.
"""
from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from fakes3 import FakeS3, response
from robustutil import (MIB, RssWatch, bounded, keys, make_watchdog_fixture, rand, timed,
                        tree)

mount = make_watchdog_fixture(150)

RSS_LIMIT = 200 * MIB
# Against a hostile server the daemon logs errors: that is its job.
HOSTILE_LOG_ALLOW = (r" (error|warn): ",)
FAKE_BUCKET = "hostile"


@pytest.fixture
def fake():
    srv = FakeS3(FAKE_BUCKET)
    yield srv
    srv.close()


def mount_fake(mount, fake, **opts):
    o = {"endpoint": fake.endpoint, "stat_ttl": 600, "cache_size": 0, "connect_timeout": 2}
    o.update(opts)
    m = mount(FAKE_BUCKET, opts=o, allow_log=HOSTILE_LOG_ALLOW)
    m.rss = RssWatch(m.proc.pid)
    return m


def alive_and_bounded(m, fake, what: str) -> None:
    """The daemon lives, serves a sane file, and has stayed under the memory limit."""
    assert m.proc.poll() is None, f"the daemon died ({what})\n{m.run_log[-3000:]}"
    assert not m.rss.killed, f"the daemon went over {m.rss.kill_at >> 20} MiB ({what})"
    got = bounded(lambda: (m.path / "ok.txt").read_bytes(), 30, f"read of ok.txt ({what})")
    assert got == fake.objects["ok.txt"], what
    assert m.rss.peak < RSS_LIMIT, f"VmRSS peaked at {m.rss.peak >> 20} MiB ({what})"


def eio_or(fn, what: str, ok=None, timeout: float = 60, limit: float = 60):
    """Run fn bounded: (result, seconds, problem). Fine: EIO within limit seconds, or a value
    for which ok(value) holds. problem says what else happened ("" if fine)."""
    r, took = timed(fn, timeout, what)
    problem = ""
    if isinstance(r, OSError):
        if r.errno != errno.EIO:
            problem = f"{what}: want EIO, got {r!r}"
    elif ok is None or not ok(r):
        problem = f"{what}: no error, and a wrong answer: " \
                  f"{r if not isinstance(r, bytes) else f'{len(r)} bytes'}"
    if took > limit:
        problem += f" {what}: took {took:.1f}s"
    return r, took, problem


# --- raw senders for the hooks -----------------------------------------------------------------

SEND_CAP = 2 << 30     # an "endless" body stops here, or after SEND_SECONDS
SEND_SECONDS = 40


def send_forever(c, head: bytes, chunked: bool = False, chunk: bytes = b"A" * 65536) -> bool:
    c.sendall(head)
    sent, t0 = 0, time.monotonic()
    while sent < SEND_CAP and time.monotonic() - t0 < SEND_SECONDS:
        if chunked:
            c.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        else:
            c.sendall(chunk)
        sent += len(chunk)
    return False


def obj_head(fake, key: str, status: int = 206, extra: dict | None = None,
             length: int | None = None, close: bool = True) -> bytes:
    h = fake.obj_headers(key)
    if length is not None:
        h["Content-Length"] = str(length)
    if close:
        h["Connection"] = "close"
    h.update(extra or {})
    lines = [f"HTTP/1.1 {status} Partial Content"] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def list_head(chunked: bool = True, extra: str = "") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n" +
            (b"Transfer-Encoding: chunked\r\n" if chunked else b"Connection: close\r\n") +
            extra.encode() + b"\r\n")


LIST_OPEN = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
             b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>hostile</Name>'
             b"<IsTruncated>false</IsTruncated>")


def entry(key: bytes, size: bytes = b"1", lm: bytes = b"2024-01-01T00:00:00.000Z") -> bytes:
    return (b"<Contents><Key>" + key + b"</Key><LastModified>" + lm +
            b'</LastModified><ETag>"0cc175b9c0f1b6a831c399e269772661"</ETag><Size>' + size +
            b"</Size></Contents>")


def xml_reply(body: bytes):
    def fn(c, req):
        c.sendall(response(200, {"Content-Type": "application/xml"}, body))
        return True
    return fn


# --- hostile object bodies ----------------------------------------------------------------------

def test_hostile_object_bodies(mount, fake):
    fake.objects["ok.txt"] = b"a sane file\n"
    names = ["endless", "endless-chunked", "cl-huge", "cl-short", "cl-long", "no-range",
             "wrong-range", "304-body"]
    for n in names:
        fake.objects[n] = rand(MIB, hash(n) & 0xffff)
    fake.hook("get", "endless-chunked", lambda c, r: send_forever(
        c, obj_head(fake, "endless-chunked", extra={"Transfer-Encoding": "chunked"}),
        chunked=True))
    fake.hook("get", "endless", lambda c, r: send_forever(c, obj_head(fake, "endless")))
    fake.hook("get", "cl-huge", lambda c, r: send_forever(
        c, obj_head(fake, "cl-huge", length=10 << 30, close=False)))
    # a Content-Length shorter than the body: the rest is junk on the connection
    fake.hook("get", "cl-short", lambda c, r: c.sendall(
        obj_head(fake, "cl-short", length=100, close=False) + b"J" * (2 * MIB)) or True)
    fake.hook("get", "cl-long", lambda c, r: c.sendall(
        obj_head(fake, "cl-long", length=2 * MIB, close=False) + b"L" * (2 * MIB)) or True)
    # Range ignored: 200 and a different, longer body
    fake.hook("get", "no-range", lambda c, r: c.sendall(response(
        200, fake.obj_headers("no-range"), b"N" * (3 * MIB))) or True)
    # 206 for another range than the one asked
    fake.hook("get", "wrong-range", lambda c, r: c.sendall(response(
        206, {**fake.obj_headers("wrong-range"),
              "Content-Range": f"bytes 100-{100 + MIB - 1}/{2 * MIB}"},
        b"W" * MIB)) or True)
    fake.hook("get", "304-body", lambda c, r: c.sendall(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nHELLO") or True)
    m = mount_fake(mount, fake)
    assert sorted(os.listdir(m.path)) == sorted(names + ["ok.txt"])
    results, problems = {}, []
    for n in names:
        want = fake.objects[n]
        r, took, problem = eio_or(lambda: (m.path / n).read_bytes(), f"read of {n}",
                                  ok=lambda got: got == want)
        results[n] = (r if isinstance(r, OSError) else f"{len(r)} bytes", round(took, 1))
        if problem:
            problems.append(problem)
        alive_and_bounded(m, fake, n)
    print("hostile bodies:", results, f"peak RSS {m.rss.stop() >> 20} MiB")
    assert not problems, "\n".join(problems)


# --- hostile listings ---------------------------------------------------------------------------

def endless_listing(c, req) -> bool:
    c.sendall(list_head())
    c.sendall(b"%x\r\n%s\r\n" % (len(LIST_OPEN), LIST_OPEN))
    i, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < SEND_SECONDS:
        e = b"".join(entry(b"huge/k%09d" % (i + j)) for j in range(200))
        c.sendall(b"%x\r\n%s\r\n" % (len(e), e))
        i += 200
    return False


def nested(c, req) -> bool:
    body = LIST_OPEN + b"<a>" * 200_000 + b"</a>" * 200_000 + b"</ListBucketResult>"
    c.sendall(response(200, {"Content-Type": "application/xml"}, body))
    return True


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;")
                                                 * 10) for i in range(1, 10))
          + b']><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
          + b"<IsTruncated>false</IsTruncated>" + entry(b"laughs/&lol9;")
          + b"</ListBucketResult>")

XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">'
       b'<!ENTITY y SYSTEM "http://127.0.0.1:9/x">]>'
       b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
       b"<IsTruncated>false</IsTruncated>" + entry(b"xxe/&x;") + entry(b"xxe/&y;")
       + entry(b"xxe/plain") + b"</ListBucketResult>")

# keys percent-encoded as encoding-type=url asks: invalid UTF-8 bytes, and raw bytes
UTF8_ENCODED = (LIST_OPEN + entry(b"utf8/bad%FF%FEname") + entry(b"utf8/half%E2%82")
                + entry(b"utf8/good%C3%A9") + entry(b"utf8/nul%00x") + entry(b"utf8/plain")
                + b"</ListBucketResult>")
UTF8_RAW = (LIST_OPEN + entry(b"utf8raw/bad\xff\xfename") + entry(b"utf8raw/plain")
            + b"</ListBucketResult>")

ABSURD = (LIST_OPEN + entry(b"absurd/huge", size=b"18446744073709551615")
          + entry(b"absurd/neg", size=b"-5") + entry(b"absurd/text", size=b"abc")
          + entry(b"absurd/badtime", lm=b"yesterday") + entry(b"absurd/plain", size=b"3")
          + entry(b"absurd/" + b"k" * 1500) + b"</ListBucketResult>")

LONGTEXT = LIST_OPEN + entry(b"longtext/" + b"x" * 100_000) + b"</ListBucketResult>"


def huge_error(c, req) -> bool:
    n = 200 * MIB
    c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
              b"Content-Length: %d\r\n\r\n<Error><Code>InternalError</Code><Message>" % n)
    try:
        for _ in range(n // (1 << 20)):
            c.sendall(b"E" * (1 << 20))
    except OSError:
        pass
    return False


def huge_headers(c, req) -> bool:
    c.sendall(b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-amz-meta-h%06d: %s\r\n" % (i, b"v" * 100)
                                                  for i in range(50_000))
              + b"Content-Length: 0\r\n\r\n")
    return False


def test_hostile_listings(mount, fake):
    fake.objects["ok.txt"] = b"a sane file\n"
    dirs = ["huge", "nested", "laughs", "xxe", "utf8", "utf8raw", "absurd", "longtext",
            "errbig", "hdrbig"]
    for d in dirs:
        fake.objects[f"{d}/placeholder"] = b"p"  # the root listing shows each directory
    fake.hook("list", "huge/", endless_listing)
    fake.hook("list", "nested/", nested)
    fake.hook("list", "laughs/", xml_reply(LAUGHS))
    fake.hook("list", "xxe/", xml_reply(XXE))
    fake.hook("list", "utf8/", xml_reply(UTF8_ENCODED))
    fake.hook("list", "utf8raw/", xml_reply(UTF8_RAW))
    fake.hook("list", "absurd/", xml_reply(ABSURD))
    fake.hook("list", "longtext/", xml_reply(LONGTEXT))
    fake.hook("list", "errbig/", huge_error)
    fake.hook("list", "hdrbig/", huge_headers)
    m = mount_fake(mount, fake)
    assert sorted(os.listdir(m.path)) == sorted(dirs + ["ok.txt"])
    results, problems = {}, []

    def ls(d):
        return sorted(os.listdir(m.path / d))

    # endless, nested, entity bombs, oversized: EIO (a listing cut short must not pass)
    for d in ("huge", "nested", "laughs", "longtext", "errbig", "hdrbig"):
        r, took, problem = eio_or(lambda: ls(d), f"listing of {d}", timeout=90)
        results[d] = (repr(r)[:60], round(took, 1))
        if problem:
            problems.append(problem)
        alive_and_bounded(m, fake, d)
    # entities are never expanded, external ones never fetched
    hostname = Path("/etc/hostname").read_text().strip()
    r, _, problem = eio_or(lambda: ls("xxe"), "listing of xxe",
                           ok=lambda r: "plain" in r and all(hostname not in n for n in r))
    results["xxe"] = repr(r)[:80]
    problems += [problem] if problem else []
    assert not any(q.target.startswith("/x") for q in fake.requests)
    alive_and_bounded(m, fake, "xxe")
    # keys that are not UTF-8: shown as bytes or left out, never a broken listing
    r, _ = timed(lambda: ls("utf8"), 60, "listing of utf8")
    results["utf8"] = repr(r)[:120]
    if isinstance(r, OSError):
        problems.append(f"a listing with percent-encoded non-UTF-8 keys failed: {r!r}")
    else:
        assert {"plain", "goodé"} <= set(r), r
        assert not any("\x00" in n or n.startswith("nul") for n in r), r
    r, _, problem = eio_or(lambda: ls("utf8raw"), "listing of utf8raw",
                           ok=lambda r: "plain" in r)
    results["utf8raw"] = repr(r)[:120]
    problems += [problem] if problem else []
    alive_and_bounded(m, fake, "utf8")
    # absurd sizes and times: whatever is shown has a sane size, the sane entry is there
    r, _ = timed(lambda: ls("absurd"), 60, "listing of absurd")
    results["absurd"] = repr(r)[:120]
    if isinstance(r, OSError):
        if r.errno != errno.EIO:
            problems.append(f"listing of absurd: {r!r}")
    else:
        assert "plain" in r, r
        assert all(len(n) <= 255 for n in r)
        for n in r:
            st = os.stat(m.path / "absurd" / n)
            assert 0 <= st.st_size < (1 << 63), (n, st.st_size)
        assert os.stat(m.path / "absurd" / "plain").st_size == 3
    alive_and_bounded(m, fake, "absurd")
    print("hostile listings:", results, f"peak RSS {m.rss.stop() >> 20} MiB")
    assert not problems, "\n".join(problems)


def _paging(tokens):
    """A listing page that is always truncated, with the next token from tokens(n)."""
    n = {"i": 0}

    def fn(c, req):
        i = n["i"]
        n["i"] += 1
        body = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>hostile</Name>'
                b"<IsTruncated>true</IsTruncated><NextContinuationToken>" +
                tokens(i).encode() + b"</NextContinuationToken>" +
                b"".join(entry(b"pages/k%06d" % (j + 1000 * (i % 3))) for j in range(1000)) +
                b"</ListBucketResult>")
        c.sendall(response(200, {"Content-Type": "application/xml"}, body))
        return True
    return fn


@pytest.mark.parametrize("tokens", ["same", "cycle"])
def test_endless_pagination_is_an_error_not_a_hang(mount, fake, tokens):
    """A server whose listing never ends (IsTruncated with the same continuation token
    again, or tokens in a cycle) must not keep readdir busy, and growing, for ever."""
    fake.objects["ok.txt"] = b"a sane file\n"
    fake.objects["pages/placeholder"] = b"p"
    fake.hook("list", "pages/", _paging((lambda i: "T") if tokens == "same"
                                        else (lambda i: "AB"[i % 2])))
    m = mount_fake(mount, fake)
    m.rss.kill_at = 400 * MIB
    os.listdir(m.path)
    r, took = timed(lambda: os.listdir(m.path / "pages"), 40, "listing of pages")
    pages = fake.count("list", "pages/")
    assert not m.rss.killed, f"the daemon grew over 400 MiB listing {pages} pages"
    assert isinstance(r, OSError) and r.errno == errno.EIO, \
        f"{r!r} after {took:.1f}s and {pages} pages"
    alive_and_bounded(m, fake, f"pagination ({tokens})")


def test_hostile_head_replies(mount, fake):
    fake.objects["ok.txt"] = b"a sane file\n"
    cases = {
        "len-overflow": {"Content-Length": "99999999999999999999999"},
        "len-negative": {"Content-Length": "-1"},
        "meta-garbage": {"x-amz-meta-mode": "not a mode", "x-amz-meta-uid": "-1",
                         "x-amz-meta-gid": "99999999999999", "x-amz-meta-mtime": "x" * 5000,
                         "x-amz-meta-xattr": "%%%{not json"},
        "meta-many": {f"x-amz-meta-k{i}": "v" * 200 for i in range(3000)},
        "etag-long": {"ETag": '"' + "f" * 5000 + '"'},
    }
    for name, h in cases.items():
        fake.objects[name] = b"12345"

        def fn(c, req, h=h, name=name):
            hd = {**fake.obj_headers(name), "Content-Length": "5", **h}
            c.sendall(("HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hd.items())
                       + "\r\n").encode())
            return True
        fake.hook("head", name, fn)
    m = mount_fake(mount, fake)
    results, problems = {}, []
    for name in cases:  # stat before any listing: a HEAD
        r, _ = timed(lambda: os.stat(m.path / name), 60, f"stat of {name}")
        results[name] = repr(r)[:100]
        if isinstance(r, OSError):
            if r.errno != errno.EIO:
                problems.append(f"stat of {name}: want EIO or a sane answer, got {r!r}")
        elif not 0 <= r.st_size < (1 << 63):
            problems.append(f"stat of {name}: size {r.st_size}")
        alive_and_bounded(m, fake, name)
    print("hostile HEAD replies:", results)
    assert not problems, "\n".join(problems)


# --- hostile names (RGW) ------------------------------------------------------------------------

HOSTILE_KEYS = {
    "pfx/ok.txt": b"ok",
    "pfx/a/b.txt": b"real b",
    "pfx/../outside.txt": b"EVIL dotdot",
    "pfx/..": b"EVIL dotdot itself",
    "pfx/.": b"EVIL dot itself",
    "pfx/a/./b.txt": b"EVIL dot",
    "pfx/a/../ok.txt": b"EVIL a dotdot",
    "pfx//lead.txt": b"EVIL double slash",
    "pfx/x//y": b"EVIL inner double slash",
    "/pfx/abs.txt": b"EVIL leading slash",
    "pfxevil/sibling.txt": b"EVIL sibling prefix",
    "pfx": b"EVIL the prefix itself",
    "outside.txt": b"EVIL bucket root",
    "pfx/ctl\x01\x02\x1b\x1f\x7f.txt": b"control characters",
    "pfx/tab\tnl\nname": b"tab and newline",
    "pfx/back\\slash..\\..\\x": b"backslashes",
    "pfx/%2e%2e/pct": b"percent dots",
    "pfx/.../three": b"three dots",
    "pfx/" + "n" * 256: b"EVIL component over 255",
    "pfx/" + "/".join(["d" * 250] * 4)[:1020]: b"1024-byte key",
}
SHOWN_ROOT = {"ok.txt", "a", "x", "ctl\x01\x02\x1b\x1f\x7f.txt", "tab\tnl\nname",
              "back\\slash..\\..\\x", "%2e%2e", "...", "d" * 250}


@pytest.fixture
def hostile_keys(s3, bucket):
    """Put HOSTILE_KEYS; at the end delete every key one by one (RGW refuses some of these
    names in a DeleteObjects, which the bucket fixture's cleanup uses)."""
    for k, v in HOSTILE_KEYS.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    yield
    for k in keys(s3, bucket):
        s3.delete_object(Bucket=bucket, Key=k)


def test_hostile_names_stay_inside_the_prefix_and_the_cache(mount, s3, bucket, tmp_path,
                                                            hostile_keys):
    sentinels = [tmp_path / "outside.txt", tmp_path.parent / "outside.txt",
                 Path("/tmp/outside.txt"), Path("/outside.txt")]
    assert not any(p.exists() for p in sentinels)
    m = mount(bucket, prefix="pfx", opts={"stat_ttl": 600})
    mine = {m.path.name, m.cache_dir.name, m.log_path.name}

    def outside() -> dict:
        """tmp_path and its parent, but for the mount point, the cache dir and the log."""
        out = {}
        for d in (tmp_path, tmp_path.parent):
            for p in d.iterdir():
                if d == tmp_path and p.name in mine:
                    continue
                if d == tmp_path.parent and p == tmp_path:
                    continue
                out[str(p)] = p.lstat().st_mtime_ns
        return out
    before = outside()

    root = set(os.listdir(m.path))
    assert root == SHOWN_ROOT, f"unexpected: {root - SHOWN_ROOT}, missing: {SHOWN_ROOT - root}"
    raw = subprocess.run(["ls", "-a1", "--quoting-style=escape", str(m.path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert raw.count("..") == 1 and raw.count(".") == 1, raw
    assert sorted(os.listdir(m.path / "a")) == ["b.txt"]
    assert os.listdir(m.path / "x") == [], "a key with '//' showed up"
    # what can be opened is what the prefix holds, by its own name
    assert (m.path / "ok.txt").read_bytes() == b"ok"
    assert (m.path / "a" / "b.txt").read_bytes() == b"real b"
    assert (m.path / "a" / "." / "b.txt").read_bytes() == b"real b"
    assert (m.path / "ctl\x01\x02\x1b\x1f\x7f.txt").read_bytes() == b"control characters"
    assert (m.path / "tab\tnl\nname").read_bytes() == b"tab and newline"
    assert (m.path / "back\\slash..\\..\\x").read_bytes() == b"backslashes"
    assert (m.path / "%2e%2e" / "pct").read_bytes() == b"percent dots"
    assert (m.path / "..." / "three").read_bytes() == b"three dots"
    longkey = "/".join(["d" * 250] * 4)[:1020]
    assert m.path.joinpath(*longkey.split("/")).read_bytes() == b"1024-byte key"
    for evil in ("sibling.txt", "abs.txt", "lead.txt", "outside.txt", "pfx", "pfxevil"):
        assert not (m.path / evil).exists(), evil
    seen = b"".join(p.read_bytes() for p in m.path.rglob("*") if p.is_file())
    assert b"EVIL" not in seen, "a key that is not a file name was served"

    # writes with hostile names land under the prefix, by their exact names
    made = {"new\x01\x1b[31m.txt": b"n1", "..." + "x": b"n2", "a b\\..\\c": b"n3",
            "-rf": b"n4", "%2e%2e%2f": b"n5"}
    for n, v in made.items():
        (m.path / n).write_bytes(v)
    os.rename(m.path / "-rf", m.path / "..." / "moved")
    (m.path / "ndir\x02").mkdir()
    (m.path / "ndir\x02" / "f").write_bytes(b"n6")
    m.unmount()
    ks = keys(s3, bucket)
    created = set(ks) - set(HOSTILE_KEYS)
    assert created == {"pfx/new\x01\x1b[31m.txt", "pfx/...x", "pfx/a b\\..\\c",
                       "pfx/%2e%2e%2f", "pfx/.../moved", "pfx/ndir\x02/", "pfx/ndir\x02/f"}, \
        created
    for k, v in HOSTILE_KEYS.items():  # nothing of the bucket was changed or removed
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == v, k

    # nothing was created outside the cache directory and the mount point
    after = outside()
    assert after == before, f"files appeared outside the cache dir: {set(after) - set(before)}"
    assert not any(p.exists() for p in sentinels)
    cache_files = [p for p in tree(m.cache_dir)]
    assert not any("outside" in p or "EVIL" in p or ".." in p.split("/") for p in cache_files)
