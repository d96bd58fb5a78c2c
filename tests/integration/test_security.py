# SPDX-License-Identifier: MIT
"""Issue 7, "Security": TLS verification on by default (a local HTTPS endpoint with a
self-signed certificate is refused unless ca_file= names it), credentials files readable by
others are warned about or refused, secrets (secret key, session token) never appear in logs,
debug output, the stats, error messages or the cache, the cache directory is 0700 with files
0600 whatever the umask, a cache directory owned by another user is refused, and with
allow_other (default_permissions is always on) another uid cannot read a 0600 file.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import mountutil as mu
from fakes3 import FakeS3, response, xml_error
from httpfault import HttpFaultProxy
from robustutil import MIB, make_watchdog_fixture, rand, s3_sha, sha, write_file

mount = make_watchdog_fixture(120)

NOBODY = 65534


def run(argv, env, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([str(a) for a in argv], env=env, capture_output=True, timeout=timeout)
    return p, time.monotonic() - t0


@pytest.fixture
def own(request, s3vfs_bin, rgw_server, aws_env, tmp_path):
    """own(bucket, mnt=None, opts=None, env=None, cache_dir=None, allow=(), args=()) -> a
    started mountutil.S3vfsMount with the mount point and cache directory of the test's
    choosing (the conftest fixture makes both itself); cleaned up at the end."""
    made = []

    def make(bucket, mnt=None, opts=None, env=None, cache_dir=None, allow=(), args=(),
             start=True):
        n = len(made) + 1
        mnt = Path(mnt or tmp_path / f"own-{n}")
        mnt.mkdir(parents=True, exist_ok=True)
        o = {"endpoint": rgw_server.endpoint, "region": rgw_server.region,
             "use_path_request_style": True, "cache_dir": cache_dir or tmp_path / f"own-{n}.c",
             "loglevel": "warn"}
        o.update(opts or {})
        ostr = ",".join(k if v is True else f"{k}={v}" for k, v in o.items() if v is not False)
        argv = [s3vfs_bin, bucket, mnt, "-f", *args, "-o", ostr]
        m = mu.S3vfsMount(argv, mnt, tmp_path / f"own-{n}.log",
                          env=env if env is not None else aws_env(),
                          allow=[r" info: statistics: \{", *allow], name="s3vfs",
                          scrub=[bucket])
        m.cache_dir = Path(o["cache_dir"])
        made.append(m)
        return m.start() if start else m

    yield make
    mu.unmount_all(made, failed=getattr(request.node, "rep_call", None) is None
                   or not request.node.rep_call.passed)


# --- TLS ---------------------------------------------------------------------------------------

def make_cert(d: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_proxy(rgw_server, tmp_path):
    import ssl
    made = []

    def make(san: str = "IP:127.0.0.1", name: str = "s3vfs-test-ca"):
        cert, key = make_cert(tmp_path, name, san)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        p = HttpFaultProxy(rgw_server.host, rgw_server.port, ssl_context=ctx)
        made.append(p)
        return p, cert
    yield make
    for p in made:
        p.close()


def test_tls_is_verified_by_default(own, s3vfs_bin, bucket, aws_env, s3, tmp_path, tls_proxy):
    proxy, cert = tls_proxy()
    assert proxy.endpoint.startswith("https://")
    mnt = tmp_path / "tls-mnt"
    mnt.mkdir()
    base = ["use_path_request_style", f"cache_dir={tmp_path / 'tls-cache'}",
            f"endpoint={proxy.endpoint}", "connect_timeout=5"]
    # an untrusted certificate: refused, at once, with a clear one-line error
    p, took = run([s3vfs_bin, bucket, mnt, "-f", "-o", ",".join(base)], aws_env())
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, err
    assert not mu.is_mounted(mnt)
    assert took < 30, took
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert any(w in lines[0].lower() for w in ("certificate", "tls", "ssl", "verif")), \
        f"the error does not say the certificate was refused: {lines[0]}"
    assert proxy.tls_errors >= 1, "the daemon never tried the handshake"
    assert proxy.count("bucket", "get", "put", "list") == 0, "a request went through TLS " \
                                                             "with an untrusted certificate"
    # the CA bundle option makes it work, end to end
    m = own(bucket, opts={"endpoint": proxy.endpoint, "ca_file": cert})
    write_file(m.path / "over-tls.bin", rand(2 * MIB, 1))
    assert s3_sha(s3, bucket, "over-tls.bin") == (sha(rand(2 * MIB, 1)), 2 * MIB)
    assert (m.path / "over-tls.bin").read_bytes() == rand(2 * MIB, 1)
    m.unmount()
    assert proxy.count("put") == 1


def test_tls_hostname_is_checked_even_with_the_ca(s3vfs_bin, bucket, aws_env, tmp_path,
                                                  tls_proxy):
    proxy, cert = tls_proxy(san="DNS:not-this-host.invalid", name="wronghost")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    o = ["use_path_request_style", f"cache_dir={tmp_path / 'c'}", f"endpoint={proxy.endpoint}",
         f"ca_file={cert}"]
    p, took = run([s3vfs_bin, bucket, mnt, "-f", "-o", ",".join(o)], aws_env())
    assert p.returncode != 0 and not mu.is_mounted(mnt), p.stderr
    assert proxy.count("bucket", "get", "put", "list") == 0


# --- credentials -------------------------------------------------------------------------------

SECRET = "s3vfsTestSecretKey0000000000000000000000"  # what the test servers accept
TOKEN = "FQoGZXIvYXdzEXAMPLETOKENs3vfsSessionToken+/=0123456789abcdefSECRETTOKEN"


def test_credentials_file_readable_by_others_is_warned_about(own, bucket, rgw_server,
                                                             aws_env, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {rgw_server.access_key}\n"
                     f"aws_secret_access_key = {rgw_server.secret_key}\n")
    os.chmod(creds, 0o644)
    env = aws_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                  AWS_SHARED_CREDENTIALS_FILE=creds)
    m = own(bucket, env=env, opts={"loglevel": "info"},
            allow=[r"readable by group or others", r"should be mode 600"])
    (m.path / "x").write_bytes(b"x")
    m.unmount()
    log = m.log
    warned = [ln for ln in log.replace(str(creds), "CREDS").splitlines() if "CREDS" in ln and
              ("readable" in ln or "mode" in ln or "permission" in ln)]
    assert warned, f"no warning about the 0644 credentials file:\n{log}"
    assert rgw_server.secret_key not in log
    # 0600: no warning
    os.chmod(creds, 0o600)
    m2 = own(bucket, env=env, opts={"loglevel": "info"})
    m2.unmount()
    assert not [ln for ln in m2.run_log.splitlines() if "readable by" in ln]


def test_secrets_never_in_logs_stats_errors_or_the_cache(own, s3vfs_bin, aws_env, tmp_path):
    """Against a fake S3 that checks no signature, so that a session token can be used: the
    daemon in debug mode (-d, loglevel=debug) does everything once, including requests that
    fail; then the log, stderr of failed mounts, the stats xattr and every file of the cache
    are searched for the secret key and the token."""
    fake = FakeS3("sec")
    try:
        fake.objects["a.txt"] = b"hello"
        fake.objects["d/b.txt"] = b"world"

        def forbidden(c, req):
            c.sendall(response(403, {"Content-Type": "application/xml"},
                               xml_error("SignatureDoesNotMatch",
                                         "The request signature we calculated does not match")))
            return True

        def broken(c, req):
            c.sendall(response(500, {"Content-Type": "application/xml"},
                               xml_error("InternalError")))
            return True
        fake.hook("get", "forbidden", forbidden)
        fake.hook("head", "forbidden", forbidden)
        fake.hook("put", "broken", broken)
        fake.objects["forbidden.txt"] = b"no"
        secret = "SeCrEt" + SECRET[6:]
        env = aws_env(AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=TOKEN)
        outputs = {}
        for how, extra in (("loglevel=debug", {}), ("-d", {"args": ("-d",)})):
            m = own("sec", env=env, opts={"endpoint": fake.endpoint, "loglevel": "debug",
                                          "stat_ttl": 1, "unmount_timeout": 1},
                    allow=[r" (error|warn|debug|info): "], **extra)
            os.listdir(m.path)
            assert (m.path / "a.txt").read_bytes() == b"hello"
            assert (m.path / "d" / "b.txt").read_bytes() == b"world"
            for fn in (lambda: (m.path / "forbidden.txt").read_bytes(),
                       lambda: (m.path / "broken.txt").write_bytes(b"x"),
                       lambda: os.stat(m.path / "missing")):
                try:
                    fn()
                except OSError:
                    pass
            (m.path / "new.txt").write_bytes(b"new")
            outputs[f"stats xattr ({how})"] = os.getxattr(m.path, "user.s3vfs.stats").decode()
            for name in os.listxattr(m.path):
                try:
                    outputs[f"xattr {name} ({how})"] = os.getxattr(m.path, name).decode(
                        errors="replace")
                except OSError:
                    pass
            m.unmount()
            outputs[f"log ({how})"] = m.log
            for p in Path(m.cache_dir).rglob("*"):
                if p.is_file():
                    outputs[f"cache file {p.relative_to(m.cache_dir)} ({how})"] = \
                        p.read_bytes().decode("latin-1")
        assert any(r.headers.get("x-amz-security-token") == TOKEN for r in fake.requests), \
            "the daemon did not use the session token (the test would prove nothing)"
        assert "debug:" in outputs["log (loglevel=debug)"] and \
            "GET /sec" in outputs["log (-d)"], "no debug output to search"
        # failed mounts: error messages
        for what, e in (("bad bucket", aws_env(AWS_SECRET_ACCESS_KEY=secret,
                                               AWS_SESSION_TOKEN=TOKEN)),):
            mnt = tmp_path / "fail-mnt"
            mnt.mkdir(exist_ok=True)
            fake.hook("bucket", "", forbidden)
            p, _ = run([s3vfs_bin, "sec", mnt, "-d", "-o",
                        f"endpoint={fake.endpoint},use_path_request_style,"
                        f"cache_dir={tmp_path / 'fc'},loglevel=debug"], e)
            assert p.returncode != 0
            outputs[f"failed mount ({what})"] = (p.stdout + p.stderr).decode(errors="replace")
        leaks = {k: [s for s in (secret, TOKEN, "Signature=", "Authorization:",
                                 "X-Amz-Security-Token:", TOKEN[:20], secret[:20])
                     if s.lower() in v.lower()]
                 for k, v in outputs.items()}
        leaks = {k: v for k, v in leaks.items() if v}
        assert not leaks, f"secrets found: {leaks}"
    finally:
        fake.close()


# --- the cache directory -----------------------------------------------------------------------

def test_cache_dir_0700_and_files_0600_whatever_the_umask(own, bucket, s3, rgw_server,
                                                          tmp_path):
    cache = tmp_path / "made-by-the-mount" / "cache"
    proxy = HttpFaultProxy(rgw_server.host, rgw_server.port)
    old = os.umask(0)
    try:
        m = own(bucket, cache_dir=cache,
                opts={"endpoint": proxy.endpoint, "multipart_threshold": 5 * MIB,
                      "part_size": 5 * MIB, "unmount_timeout": 1, "stat_ttl": 600},
                allow=[r" warn: ", r" error: upload of \S+ failed", r"upload at release"])
    finally:
        os.umask(old)
    try:
        s3.put_object(Bucket=bucket, Key="r.bin", Body=rand(3 * MIB, 2))
        write_file(m.path / "small", b"s" * 1000)
        write_file(m.path / "big", rand(11 * MIB, 3))
        assert (m.path / "r.bin").read_bytes() == rand(3 * MIB, 2)   # the data cache
        (m.path / "dir").mkdir()
        proxy.add("status", ("put", "part", "mpu_create"), times=None, status=503)
        with pytest.raises(OSError):
            write_file(m.path / "pending", b"p" * 300_000)   # staged in the cache dir
        staged = [p for p in cache.rglob("*") if "staging" in p.parts and p.is_file()]
        assert staged, "nothing staged: the check below would miss the staging files"
        bad = []
        for p in [cache, *cache.rglob("*")]:
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue   # a staging file handed to the pending queue by the async release
            mode = stat.S_IMODE(st.st_mode)
            if st.st_uid != os.geteuid():
                bad.append(f"{p}: owned by {st.st_uid}")
            if stat.S_ISDIR(st.st_mode) and mode != 0o700:
                bad.append(f"{p}: directory mode {mode:04o}")
            if stat.S_ISREG(st.st_mode) and mode & 0o077:
                bad.append(f"{p}: file mode {mode:04o}")
        assert not bad, "\n".join(bad)
        parent_mode = stat.S_IMODE(cache.parent.stat().st_mode)
        assert parent_mode & 0o022 == 0, f"the parent the mount created: {parent_mode:04o}"
    finally:
        proxy.clear()
        proxy.close()


@pytest.mark.parametrize("how", ["owned by nobody", "writable by others",
                                 "its per-bucket directory owned by nobody"])
def test_a_cache_dir_another_user_controls_is_refused(own, s3vfs_bin, bucket, aws_env,
                                                      rgw_server, tmp_path, how):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    if how == "owned by nobody":
        os.chown(cache, NOBODY, NOBODY)
    elif how == "writable by others":
        os.chmod(cache, 0o777)
    else:
        m = own(bucket, cache_dir=cache)
        m.unmount()
        sub = [p for p in cache.iterdir() if p.is_dir()]
        assert len(sub) == 1, sub
        for p in [sub[0], *sub[0].rglob("*")]:
            os.lchown(p, NOBODY, NOBODY)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    o = [f"endpoint={rgw_server.endpoint}", "use_path_request_style", f"cache_dir={cache}"]
    log = tmp_path / "refused.log"
    proc = mu.start_daemon([s3vfs_bin, bucket, mnt, "-f", "-o", ",".join(o)], log, aws_env())
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and not mu.is_mounted(mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        mounted = mu.is_mounted(mnt)
        rc = proc.poll()
    finally:
        mu.cleanup(mnt, proc)
    err = mu.read_log(log)
    assert not mounted and rc not in (None, 0), \
        f"a cache dir {how} was accepted (mounted: {mounted}, exit: {rc}):\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and str(cache) in err, err


# --- allow_other with default_permissions ------------------------------------------------------

def as_nobody(*argv, timeout=20) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", "--", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout)


def test_allow_other_respects_permissions(own, bucket, s3):
    top = Path(tempfile.mkdtemp(prefix="s3vfs-ao-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)  # another uid must reach the mount point
        m = own(bucket, mnt=top / "mnt", opts={"allow_other": True, "stat_ttl": 600})
        os.chmod(m.path, 0o755)
        (m.path / "public.txt").write_bytes(b"public\n")
        os.chmod(m.path / "public.txt", 0o644)
        (m.path / "secret.txt").write_bytes(b"secret\n")
        os.chmod(m.path / "secret.txt", 0o600)
        (m.path / "private").mkdir(mode=0o700)
        (m.path / "private" / "inner.txt").write_bytes(b"inner\n")
        os.chmod(m.path / "private" / "inner.txt", 0o644)
        s3.put_object(Bucket=bucket, Key="boto.txt", Body=b"from boto\n")  # mount defaults

        r = as_nobody("cat", m.path / "public.txt")
        assert r.returncode == 0 and r.stdout == "public\n", r
        r = as_nobody("cat", m.path / "boto.txt")
        assert r.returncode == 0 and r.stdout == "from boto\n", r
        for path in (m.path / "secret.txt", m.path / "private" / "inner.txt"):
            r = as_nobody("cat", path)
            assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r)
            assert "secret" not in r.stdout and "inner" not in r.stdout
        r = as_nobody("ls", m.path / "private")
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
        r = as_nobody("sh", "-c", f"echo x >> '{m.path / 'public.txt'}'")
        assert r.returncode != 0, r
        r = as_nobody("touch", m.path / "by-nobody.txt")
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
        r = as_nobody("chmod", "666", m.path / "secret.txt")
        assert r.returncode != 0, r
        r = as_nobody("rm", "-f", m.path / "public.txt")
        assert r.returncode != 0, r
        # the same, seen by S3: nothing changed
        assert s3.get_object(Bucket=bucket, Key="public.txt")["Body"].read() == b"public\n"
        assert "by-nobody.txt" not in [o["Key"] for o in
                                       s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert stat.S_IMODE(os.stat(m.path / "secret.txt").st_mode) == 0o600
        m.unmount()
        # without allow_other another uid sees nothing at all
        m2 = own(bucket, mnt=top / "mnt2", opts={"stat_ttl": 600})
        os.chmod(m2.path, 0o755)
        r = as_nobody("cat", m2.path / "public.txt")
        assert r.returncode != 0, r
        m2.unmount()
    finally:
        for d in ("mnt", "mnt2"):
            if mu.is_mounted(top / d):
                subprocess.run(["fusermount3", "-u", "-z", str(top / d)], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
