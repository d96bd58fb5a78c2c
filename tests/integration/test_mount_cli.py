# SPDX-License-Identifier: MIT
"""The s3vfs command line: help and version, and a mount that cannot work fails at once
with a one-line error naming the cause (never a mount that errors later); a daemonized
mount; a clean exit on SIGTERM; no secret in the debug log."""
import os
import signal
import subprocess
import time

import pytest

import mountutil as mu


def run(argv, env, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([str(a) for a in argv], env=env, capture_output=True, timeout=timeout)
    return p, time.monotonic() - t0


def test_help_and_version(s3vfs_bin, aws_env):
    p, _ = run([s3vfs_bin, "--help"], aws_env())
    assert p.returncode == 0
    for opt in ("endpoint=", "use_path_request_style", "stat_ttl=", "cache_dir=", "uid=",
                "umask=", "multipart_threshold=", "loglevel=", "unmount_timeout="):
        assert opt.encode() in p.stdout, opt
    p, _ = run([s3vfs_bin, "--version"], aws_env())
    assert p.returncode == 0 and p.stdout.startswith(b"s3vfs ")


@pytest.fixture
def argv(s3vfs_bin, rgw_server, tmp_path):
    def make(bucket, *opts, endpoint=None):
        mnt = tmp_path / "mnt"
        mnt.mkdir(exist_ok=True)
        o = [f"endpoint={endpoint or rgw_server.endpoint}", "use_path_request_style",
             f"cache_dir={tmp_path / 'cache'}", *opts]
        return [s3vfs_bin, bucket, mnt, "-f", "-o", ",".join(o)], mnt
    return make


def one_line_error(p, *words):
    err = p.stderr.decode()
    assert p.returncode != 0, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], err
    return lines[0]


def test_bad_option_value(argv, bucket, aws_env):
    a, mnt = argv(bucket, "umask=99x")
    p, took = run(a, aws_env())
    one_line_error(p, "umask")
    assert not mu.is_mounted(mnt)


def test_unknown_option(argv, bucket, aws_env):
    a, mnt = argv(bucket, "no_such_option=1")
    p, _ = run(a, aws_env())
    assert p.returncode != 0
    assert b"no_such_option" in p.stderr
    assert not mu.is_mounted(mnt)


def test_missing_bucket(argv, aws_env):
    a, mnt = argv("no-such-bucket-s3vfs")
    p, took = run(a, aws_env())
    one_line_error(p, "no-such-bucket-s3vfs", "does not exist")
    assert took < 10 and not mu.is_mounted(mnt)


def test_bad_credentials(argv, bucket, aws_env):
    secret = "WRONGsecretWRONGsecretWRONGsecret0000000"
    a, mnt = argv(bucket)
    p, took = run(a, aws_env(AWS_SECRET_ACCESS_KEY=secret))
    one_line_error(p, "denied", "credentials")
    assert secret.encode() not in p.stderr
    assert took < 10 and not mu.is_mounted(mnt)


def test_no_credentials(argv, bucket, aws_env):
    a, mnt = argv(bucket)
    p, _ = run(a, aws_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None))
    one_line_error(p, "credentials")
    assert not mu.is_mounted(mnt)


def test_unreachable_endpoint_fails_bounded(argv, bucket, aws_env):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    a, mnt = argv(bucket, endpoint=f"http://127.0.0.1:{port}")
    p, took = run(a, aws_env())
    one_line_error(p, "cannot reach the endpoint")
    assert took < 30 and not mu.is_mounted(mnt)


def test_daemonized_mount_and_sigterm(argv, bucket, aws_env, s3, tmp_path):
    a, mnt = argv(bucket)
    a.remove("-f")
    p, took = run(a, aws_env())  # returns once mounted, the daemon in the background
    assert p.returncode == 0, p.stderr
    try:
        assert mu.is_mounted(mnt)
        (mnt / "f").write_bytes(b"daemon")
        assert s3.get_object(Bucket=bucket, Key="f")["Body"].read() == b"daemon"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], timeout=30)
    deadline = time.monotonic() + 10
    while mu.is_mounted(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mu.is_mounted(mnt)


def test_sigterm_unmounts_cleanly(argv, bucket, aws_env, s3, tmp_path):
    a, mnt = argv(bucket)
    log = tmp_path / "daemon.log"
    proc = mu.start_daemon(a, log, env=aws_env())
    try:
        mu.wait_for_mount(proc, mnt)
        (mnt / "g").write_bytes(b"term")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, mu.read_log(log)
        assert not mu.is_mounted(mnt)
    finally:
        mu.cleanup(mnt, proc)
    assert s3.get_object(Bucket=bucket, Key="g")["Body"].read() == b"term"


def test_debug_log_has_requests_and_no_secret(argv, bucket, aws_env, tmp_path, rgw_server):
    a, mnt = argv(bucket, "loglevel=debug")
    log = tmp_path / "daemon.log"
    proc = mu.start_daemon(a, log, env=aws_env())
    try:
        mu.wait_for_mount(proc, mnt)
        (mnt / "h").write_bytes(b"x")
        os.listdir(mnt)
        mu.umount(mnt, proc)
    finally:
        mu.cleanup(mnt, proc)
    text = mu.read_log(log)
    assert "PUT /" in text and " -> 200 " in text  # each request: method, path, status
    assert rgw_server.secret_key not in text
    assert "Signature=" not in text and "Authorization" not in text
