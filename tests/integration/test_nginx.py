# SPDX-License-Identifier: MIT
"""Debian's nginx serving from s3vfs mounts: a plain mount (objects written through the S3
API) and content chains (a site published with transactions). nginx runs as root in the
foreground with a generated config (one worker, sendfile, no access log) on a free loopback
port, and is stopped by its PID (nginxutil.py).

What is checked: responses are byte-exact (a 5 MiB file and ranges of it too); an object
overwritten through the S3 API and a published version are served within stat_ttl; a hot
file costs no request within stat_ttl and one conditional request after it; a deploy of 200
files is atomic for a client fetching pages in a loop; two servers with two mounts of one
version send the same ETag and Last-Modified. Request counts come from the mounts' stats
xattr. Times are measured and reported (-s prints them), never asserted, except as the
bounds of polls that the issue states (stat_ttl plus a margin).

The guarantee of a deploy, as tested (test_atomic_deploy_200_files):
  * a response that completed before the commit started is the old version (N): a
    transaction's staged changes are never served by another mount;
  * every body is exactly one version of its file (never a mix, never a wrong length);
  * once the client has received N+1 for any file at time T, every request that starts
    after T + stat_ttl gets N+1 for every file (a mount shows one version's tree; a file whose
    attributes it reported to the kernel within stat_ttl is served from that version); with
    nginx's open_file_cache, after T + stat_ttl + 2 x open_file_cache_valid.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

import chainutil as cu
import nginxutil as nu
from nginxutil import HttpClient, delta, head, requests, txn, wait_until, write

from robustutil import make_watchdog_fixture  # noqa: E402

TEST_TIMEOUT = 150.0
ERROR_LOG_BAD = re.compile(r"\[(error|crit|alert|emerg)\]")


from chainutil import umask_022  # noqa: E402,F401 (autouse)


# s3vfs_mount with a watchdog: a hung mount fails the test instead of hanging it.
mount = make_watchdog_fixture(TEST_TIMEOUT)


chain_opts = cu.chain_opts_fixture(1)


@pytest.fixture
def nginx(s3vfs_mount, tmp_path, request):
    """Factory: nginx(root, name) -> a started nu.Nginx. Depends on s3vfs_mount so that the
    servers stop before the mounts are unmounted. At the end each error log must be free of
    [error], [crit], [alert] and [emerg] lines (read errors from the mount show up there)."""
    started: list[nu.Nginx] = []

    def start(root, name: str = "nginx", http_extra: str = "", workers: int = 1) -> nu.Nginx:
        n = nu.Nginx(root, tmp_path / name, http_extra=http_extra, workers=workers)
        started.append(n)
        return n.start()

    yield start
    for n in started:
        n.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        mark = request.node.get_closest_marker("nginx_allow")
        allow = re.compile(mark.args[0]) if mark else None
        bad = [f"{n.error_log}: {ln}" for n in started for ln in n.log_text().splitlines()
               if ERROR_LOG_BAD.search(ln) and not (allow and allow.search(ln))]
        if bad:
            pytest.fail("nginx logged errors:\n" + "\n".join(bad[:20]), pytrace=False)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def new_chain(m, name="site") -> Path:
    d = m.path / name
    os.mkdir(d)
    nu.mark_content(d)
    return d


def deploy(d, files: dict[str, bytes], workdir: Path) -> None:
    """begin; cp -r build/. DIR/; commit."""
    src = workdir
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    txn(d, "begin")
    r = subprocess.run(["cp", "-r", f"{src}/.", str(d)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    txn(d, "commit")


def fetch_ok(c: HttpClient, path: str) -> bytes:
    r = c.get(path)
    assert r.status == 200, (path, r.status, r.body[:200])
    return r.body


# --- 1. byte-exact ----------------------------------------------------------------------------

def test_serves_plain_mount_and_content_chain_byte_exact(mount, chain_opts, nginx, s3, bucket,
                                                          tmp_path):
    rng = random.Random(1)
    files = {
        "index.html": b"<!doctype html><h1>index</h1>\n",
        "css/site.css": b"body{margin:0}\n" * 300,
        "js/app.js": rng.randbytes(40_000),
        "img/big.bin": rng.randbytes(5 * 1024 * 1024),
        "empty.txt": b"",
        "deep/a/b/c/page.html": b"<p>deep</p>\n",
    }
    # plain: written through the S3 API
    for rel, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"plain/{rel}", Body=data)
    m = mount(bucket, opts=chain_opts())
    # chain: written through the mount in one transaction
    d = new_chain(m)
    deploy(d, files, tmp_path / "build")
    assert head(d)["version"] == 1

    n = nginx(m.path)
    c = HttpClient(n.port)
    for prefix in ("plain", "site"):
        for rel, data in files.items():
            r = c.get(f"{prefix}/{rel}")
            assert r.status == 200, (prefix, rel, r.status)
            assert int(r.headers["content-length"]) == len(data), (prefix, rel)
            assert sha(r.body) == sha(data), (prefix, rel)
        # ranges of the big file: sendfile from the middle of the mount's file
        big = files["img/big.bin"]
        for lo, hi in ((0, 0), (1_000_000, 1_999_999), (len(big) - 10, len(big) - 1)):
            r = c.get(f"{prefix}/img/big.bin", headers={"Range": f"bytes={lo}-{hi}"})
            assert r.status == 206 and r.body == big[lo:hi + 1], (prefix, lo, hi, r.status)
        assert c.get(f"{prefix}/missing.html").status == 404
    # what is not part of a chain's tree is not served from it
    assert c.get("site/.head").status == 200  # readable by name, as through the shell
    assert c.get("site/.versions/1/index.html").body == files["index.html"]
    c.close()


# --- 2. changes are served within stat_ttl -------------------------------------------------------

def test_s3_overwrite_and_published_version_served_within_stat_ttl(
        mount, chain_opts, nginx, s3, bucket, tmp_path, record_property):
    ttl = 2
    s3.put_object(Bucket=bucket, Key="obj.txt", Body=b"version 1 of the object\n")
    m = mount(bucket, opts=chain_opts(stat_ttl=ttl))
    writer = mount(bucket, opts=chain_opts(stat_ttl=1))
    d = new_chain(writer)
    deploy(d, {f"p{i}.html": f"page {i} old\n".encode() for i in range(5)}, tmp_path / "b1")
    n = nginx(m.path)
    c = HttpClient(n.port)
    assert fetch_ok(c, "obj.txt") == b"version 1 of the object\n"
    wait_until(lambda: c.get("site/p0.html").body == b"page 0 old\n", ttl + 3,
               "the chain's version 1 through nginx")
    time.sleep(1.1)  # a later second: Last-Modified differs too

    s3.put_object(Bucket=bucket, Key="obj.txt", Body=b"version 2 of the object, longer\n")
    t0 = time.monotonic()
    wait_until(lambda: c.get("obj.txt").body == b"version 2 of the object, longer\n",
               ttl + 3, "the overwrite through nginx", interval=0.05)
    seen_s3 = time.monotonic() - t0

    txn(d, "begin")
    for i in range(5):
        write(d / f"p{i}.html", f"page {i} new, published\n".encode())
    txn(d, "commit")
    t0 = time.monotonic()

    def all_new():
        return all(c.get(f"site/p{i}.html").body == f"page {i} new, published\n".encode()
                   for i in range(5))
    wait_until(all_new, ttl + 3, "the published version through nginx", interval=0.05)
    seen_pub = time.monotonic() - t0
    c.close()
    record_property("s3_overwrite_seen_s", round(seen_s3, 3))
    record_property("publish_seen_s", round(seen_pub, 3))
    print(f"\nstat_ttl={ttl}: S3 overwrite served new after {seen_s3:.2f}s, a published "
          f"version after {seen_pub:.2f}s")


def test_open_file_cache_serves_an_overwrite_whole(mount, nginx, s3, bucket, record_property):
    """nginx's open_file_cache keeps a descriptor and re-checks the file by name every
    open_file_cache_valid: the same inode number with a new size and mtime means "the same
    file, changed in place", so it keeps the descriptor and takes the new size. An s3vfs
    descriptor keeps serving the version it was opened on, so the inode number changes with
    the content, and nginx opens the file again. (Before that: same inode, old bytes, new
    size: nginx answered with the new Content-Length and aborted after the old bytes, for as
    long as the file stayed hot.)"""
    ttl = 1
    s3.put_object(Bucket=bucket, Key="obj.txt", Body=b"short v1\n")
    m = mount(bucket, opts={"stat_ttl": ttl})
    n = nginx(m.path, http_extra=nu.OPEN_FILE_CACHE)
    c = HttpClient(n.port)
    assert fetch_ok(c, "obj.txt") == b"short v1\n"
    ino = os.stat(m.path / "obj.txt").st_ino
    time.sleep(1.1)
    v2 = b"a longer version 2 of the object\n"
    s3.put_object(Bucket=bucket, Key="obj.txt", Body=v2)
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < ttl + 1 + 3:  # stat_ttl + open_file_cache_valid + margin
        try:
            body = c.get("obj.txt").body
        except (OSError, http.client.HTTPException) as e:
            body = repr(e)
        if not seen or seen[-1][1] != body:
            seen.append((round(time.monotonic() - t0, 2), body))
        if body == v2 and time.monotonic() - t0 > ttl + 1:
            break
        time.sleep(0.02)
    c.close()
    record_property("open_file_cache_overwrite", seen)
    ino2 = os.stat(m.path / "obj.txt").st_ino
    assert ino2 != ino, "the inode number did not change with the content"
    assert seen[-1][1] == v2 and all(b in (b"short v1\n", v2) for _, b in seen), (
        f"with open_file_cache: {seen} (inode {ino} before, {ino2} after the overwrite)")


# --- 3. hot files --------------------------------------------------------------------------------

def _hammer(c: HttpClient, path: str, want: bytes, n: int) -> None:
    for _ in range(n):
        r = c.get(path)
        assert r.status == 200 and r.body == want, (r.status, r.body[:80])


def _within_ttl(m, c, path, want, ttl, n=200) -> dict:
    """n fetches of path that all fall within one stat_ttl window after a warm fetch; the
    request counters' delta over them. Retried (3 times) if the machine was too slow to fit
    them in the window: a precondition, not an assertion about time."""
    for _ in range(3):
        fetch_ok(c, path)
        t_warm = time.monotonic()
        before = requests(m)
        _hammer(c, path, want, n)
        got = delta(m, before)
        if time.monotonic() - t_warm < ttl - 0.3:
            return got
        time.sleep(ttl + 0.2)
    pytest.fail(f"{n} fetches did not fit in stat_ttl={ttl}s three times: machine too slow")


def _wrk(port: int, path: str, seconds: int = 1) -> int:
    r = subprocess.run(["wrk", "-t1", "-c4", f"-d{seconds}s", f"http://127.0.0.1:{port}/{path}"],
                       capture_output=True, text=True, timeout=seconds + 30)
    assert r.returncode == 0, r.stderr
    m = re.search(r"(\d+) requests in", r.stdout)
    assert m and "Non-2xx" not in r.stdout, r.stdout
    return int(m.group(1))


def test_hot_file_plain_mount_no_request_within_ttl_one_conditional_after(
        mount, nginx, s3, bucket, record_property):
    ttl = 3
    page = (b"<p>hot page</p>\n" * 700)[:10 * 1024]
    s3.put_object(Bucket=bucket, Key="hot.html", Body=page)
    m = mount(bucket, opts={"stat_ttl": ttl})
    n = nginx(m.path)
    c = HttpClient(n.port)
    assert fetch_ok(c, "hot.html") == page  # the first fetch: HEAD (lookup) and GET

    d1 = _within_ttl(m, c, "hot.html", page, ttl)
    assert d1 == {}, f"200 fetches within stat_ttl cost requests: {d1}"

    time.sleep(ttl + 0.5)
    before = requests(m)
    assert fetch_ok(c, "hot.html") == page
    d2 = delta(m, before)
    # one conditional HEAD (If-None-Match) answered 304: the pages stay, no GET
    assert d2 == {"head": 1, "total": 1}, d2
    # and hammering again within the new window: nothing (wrk, then the loop)
    before = requests(m)
    served = _wrk(n.port, "hot.html", 1)
    _hammer(c, "hot.html", page, 50)
    d3 = delta(m, before)
    # (on a slow machine the window may end during wrk: then one more conditional HEAD)
    assert d3 == {} or d3 == {"head": 1, "total": 1}, d3
    c.close()
    record_property("plain_hot", {"within_ttl": d1, "after_ttl": d2, "wrk_requests": served})
    print(f"\nplain hot file: 200 fetches within ttl -> {d1 or 0} requests; one fetch after "
          f"ttl -> {d2}; wrk 1s ({served} responses) + 50 fetches -> {d3 or 0}")


def test_hot_file_content_chain_no_request_within_ttl_only_head_check_after(
        mount, chain_opts, nginx, bucket, record_property):
    ttl = 3
    page = (b"<p>hot chain page</p>\n" * 500)[:10 * 1024]
    m = mount(bucket, opts=chain_opts(stat_ttl=ttl))
    d = new_chain(m)
    write(d / "hot.html", page)
    time.sleep(ttl + 0.3)  # the writer's own pin (see test_chain_content.py) is gone
    n = nginx(m.path)
    c = HttpClient(n.port)
    assert fetch_ok(c, "site/hot.html") == page

    d1 = _within_ttl(m, c, "site/hot.html", page, ttl)
    assert d1 == {}, f"200 fetches within stat_ttl cost requests: {d1}"

    time.sleep(ttl + 0.5)
    before = requests(m)
    assert fetch_ok(c, "site/hot.html") == page
    d2 = delta(m, before)
    c.close()
    record_property("chain_hot", {"within_ttl": d1, "after_ttl": d2})
    print(f"\nchain hot file: 200 fetches within ttl -> {d1 or 0} requests; one fetch after "
          f"ttl -> {d2}")
    # nothing changed: at most the head's GetItem (and a LIST page if it moved), no S3
    s3_ops = {k: v for k, v in d2.items() if not k.startswith("ddb_") and k != "total"}
    assert d2.get("ddb_get_item", 0) <= 1 and s3_ops == {}, d2


# --- 4. an atomic deploy under load --------------------------------------------------------------

def _page(k: int, ver: int) -> bytes:
    # versions differ in length too: a size from one and bytes from the other would show
    return f"page {k:03d} version {ver}{'!' * (ver + k % 5)}\n".encode()


# Known limitation (README "Content chains"): while a file switches versions, a request can
# see the new size with the old bytes for an instant; nginx then cuts that response short and
# logs it (the client sees a broken connection, never a body mixing two versions, which the
# test checks). Tolerated here, counted, and reported; everything else is checked as written.
@pytest.mark.nginx_allow(r"sendfile\(\) reported that .* was truncated")
@pytest.mark.parametrize("variant", ["plain", "open_file_cache", "open_file_cache_2_workers"])
def test_atomic_deploy_200_files(mount, chain_opts, nginx, bucket, tmp_path, record_property,
                                 variant):
    """The guarantee of the module docstring, with nginx as in the issue (plain), and as
    tests/bench/README.md recommends it (open_file_cache, one worker and two: each worker
    keeps its own descriptors, of either version, on the same file). With open_file_cache
    a descriptor is re-checked every open_file_cache_valid; the re-check that finds the
    change still sees the old version while its inode is retired (fs/retire.c: the old
    descriptors keep their pages), the next one sees the new inode number and opens the
    file again: two open_file_cache_valid periods add to the switch. Two clients with
    open_file_cache."""
    ttl = 2
    ofc = variant.startswith("open_file_cache")
    workers = 2 if variant.endswith("2_workers") else 1
    extra_delay = 2.0 if ofc else 0.0  # two open_file_cache_valid periods
    N = 1
    pages = 200
    a = mount(bucket, opts=chain_opts(stat_ttl=1))
    d = new_chain(a)
    deploy(d, {f"p/{k:03d}.html": _page(k, N) for k in range(pages)}, tmp_path / "build-n")
    assert head(d)["version"] == N
    src = tmp_path / "build-n1"
    for k in range(pages):
        p = src / "p" / f"{k:03d}.html"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_page(k, N + 1))

    b = mount(bucket, opts=chain_opts(stat_ttl=ttl))
    if ofc:
        n = nginx(b.path, http_extra=nu.OPEN_FILE_CACHE, workers=workers)
    else:
        n = nginx(b.path)
    old = {k: _page(k, N) for k in range(pages)}
    new = {k: _page(k, N + 1) for k in range(pages)}

    # the client: random pages in a loop, each response with when its request started/ended
    log: list[tuple[int, float, float, int, bytes]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def client(seed):
        c = HttpClient(n.port)
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                k = rng.randrange(pages)
                t0 = time.monotonic()
                r = c.get(f"site/p/{k:03d}.html")
                log.append((k, t0, time.monotonic(), r.status, r.body))
        except BaseException as e:  # noqa: BLE001 — reported below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,), name=f"deploy client {i}",
                                daemon=True) for i in range(2 if ofc else 1)]
    for th in threads:
        th.start()
    try:
        # warm: the client has seen version N for a while
        wait_until(lambda: len(log) > 50 or errors, 30, "the client's first responses")
        assert not errors, (f"client errors (a hung mount? see test_chain_content.py::"
                            f"test_reads_and_lookups_at_once_do_not_deadlock): {errors}")
        time.sleep(ttl + 0.5)
        t_begin = time.monotonic()
        txn(d, "begin")
        r = subprocess.run(["cp", "-r", f"{src}/.", str(d)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        t_commit = time.monotonic()
        txn(d, "commit")
        t_done = time.monotonic()
        assert head(d)["version"] == N + 1
        # let the client run on well past the switch
        end = t_done + 2 * ttl + extra_delay + 3
        while time.monotonic() < end and all(th.is_alive() for th in threads):
            time.sleep(0.1)
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    assert not any(th.is_alive() for th in threads), "a client thread hung"
    assert not errors, (f"client errors (a hung mount? see test_chain_content.py::"
                        f"test_reads_and_lookups_at_once_do_not_deadlock): {errors}")

    # all 200 pages are N+1 now
    c = HttpClient(n.port)
    final_old = [k for k in range(pages) if fetch_ok(c, f"site/p/{k:03d}.html") != new[k]]
    c.close()

    problems = []
    # every body is one version's, whole
    bad = [(k, st, body, round(t1 - t_done, 3)) for k, _, t1, st, body in log
           if st != 200 or body not in (old[k], new[k])]
    if bad:
        problems.append(f"{len(bad)} responses neither version N nor N+1 (page, status, body, "
                        f"s after the commit returned): {bad[:6]}")
    # nothing of N+1 before the commit started (the staged copy is never served)
    early = [(k, round(t1 - t_commit, 3)) for k, _, t1, _, body in log
             if t1 < t_commit and body == new[k]]
    if early:
        problems.append(f"N+1 served before the commit started: {early[:10]}")
    firsts = [t1 for k, _, t1, _, body in log if body == new[k]]
    T = min(firsts) if firsts else None
    late_old, after = [], []
    if T is None:
        problems.append("the client never saw version N+1")
    else:
        # after the first N+1 at T, requests started after T + stat_ttl are all N+1
        bound = ttl + extra_delay
        late_old = [(k, round(t0 - T, 3)) for k, t0, _, _, body in log
                    if t0 > T + bound and body != new[k]]
        if late_old:
            problems.append(f"not N+1 for requests started more than {bound}s (stat_ttl"
                            f"{' + 2 x open_file_cache_valid' if ofc else ''}) after the client "
                            f"first saw N+1: {late_old[:10]} ({len(late_old)})")
        after = [body for k, t0, _, _, body in log if t0 > T + bound]
        if not after:
            problems.append("no request after T + stat_ttl: the client did not run long "
                            "enough")
    if final_old:
        problems.append(f"pages not N+1 at the end: {final_old[:10]}")

    deploy_s = t_done - t_begin
    last_old = max((t1 for k, _, t1, _, body in log if body == old[k]), default=None)
    stats = {"deploy_s": round(deploy_s, 3), "copy_s": round(t_commit - t_begin, 3),
             "commit_s": round(t_done - t_commit, 3), "responses": len(log),
             "responses_during_copy": sum(1 for _, _, t1, _, _ in log
                                          if t_begin <= t1 < t_commit),
             "first_new_after_commit_s": round(T - t_done, 3) if T else None,
             "last_old_after_first_new_s": round(last_old - T, 3) if T and last_old else None,
             "responses_after_switch_window": len(after), "mixed": len(bad)}
    record_property("deploy", stats)
    print(f"\natomic deploy of {pages} files ({variant}, stat_ttl={ttl}): begin -> commit returned "
          f"{deploy_s:.2f}s (copy {t_commit - t_begin:.2f}s, commit {t_done - t_commit:.3f}s); "
          f"{stats}")
    assert not problems, "\n".join(problems)


# --- 5. two servers, two mounts, one version: the same validators --------------------------------

def test_two_servers_same_etag_and_last_modified(mount, chain_opts, nginx, bucket, tmp_path):
    a = mount(bucket, opts=chain_opts())
    d = new_chain(a)
    files = {f"f{i:02d}.html": (f"page {i}\n" * (i * 37 + 1)).encode() for i in range(20)}
    files["sub/x.css"] = b"x{}\n"
    deploy(d, files, tmp_path / "b1")
    time.sleep(1.1)  # a second version, with later mtimes for some files
    txn(d, "begin")
    write(d / "f03.html", b"changed\n")
    os.utime(d / "f04.html", ns=(1_700_000_000_500_000_000,) * 2)
    txn(d, "commit")
    files["f03.html"] = b"changed\n"

    # two fresh mounts of the same version, each with its own nginx
    m1 = mount(bucket, opts=chain_opts())
    m2 = mount(bucket, opts=chain_opts())
    assert head(m1.path / "site") == head(m2.path / "site") == head(d)
    n1, n2 = nginx(m1.path, "nginx-1"), nginx(m2.path, "nginx-2")
    c1, c2 = HttpClient(n1.port), HttpClient(n2.port)
    for rel, data in files.items():
        r1, r2 = c1.get(f"site/{rel}"), c2.get(f"site/{rel}")
        assert r1.status == r2.status == 200 and r1.body == r2.body == data, rel
        v1 = (r1.headers.get("etag"), r1.headers.get("last-modified"))
        v2 = (r2.headers.get("etag"), r2.headers.get("last-modified"))
        assert v1 == v2 and None not in v1, (rel, v1, v2)
        # and a revalidation against the other server says 304
        r = c2.get(f"site/{rel}", headers={"If-None-Match": v1[0]})
        assert r.status == 304, (rel, r.status)
    assert c1.get("site/f04.html").headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    c1.close()
    c2.close()
