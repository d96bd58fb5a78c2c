# SPDX-License-Identifier: MIT
"""The mount harness itself (mountutil.py, the s3fs_mount and s3vfs_mount fixtures), proved on
Debian's s3fs (and a smoke test of the s3vfs fixture's API).

If these fail, no mount test can be trusted: wait_for_mount must fail at once when the daemon
dies, umount must insist on exit status 0, cleanup must get rid of a hung daemon within its
bound, and the log scan must catch what it is meant to catch and nothing the allow-list names.
"""
import errno
import os
import signal
import time

import pytest

import mountutil as mu

Failed = pytest.fail.Exception


def test_s3fs_roundtrip_clean_unmount_and_remount(s3fs_mount, bucket, s3):
    m = s3fs_mount(bucket)
    assert mu.is_mounted(m.path) and os.path.ismount(m.path)
    (m.path / "hello.txt").write_bytes(b"hello through s3fs\n")
    assert (m.path / "hello.txt").read_bytes() == b"hello through s3fs\n"
    got = s3.get_object(Bucket=bucket, Key="hello.txt")
    assert got["Body"].read() == b"hello through s3fs\n"

    proc = m.proc
    m.unmount()  # exit status 0 and a clean log are asserted inside
    assert proc.returncode == 0
    assert not m.running and not mu.is_mounted(m.path)
    assert "s3fs version" in m.log  # the log file holds the daemon's output

    m.remount() if m.running else m.start()
    assert (m.path / "hello.txt").read_bytes() == b"hello through s3fs\n"
    # left mounted: the fixture's teardown unmounts it cleanly


def test_wait_for_mount_fails_at_once_when_the_daemon_exits(s3fs_mount, bucket):
    t0 = time.monotonic()
    with pytest.raises(Failed) as ei:
        s3fs_mount(bucket + "-does-not-exist")
    assert time.monotonic() - t0 < 10
    msg = str(ei.value)
    # (s3fs 1.90 exits with status 0 here, after unmounting itself)
    assert "the daemon exited with status 0 before" in msg
    assert "s3fs-1.log" in msg  # the log is shown, with the reason
    assert "Exiting FUSE event loop due to errors" in msg


def test_umount_requires_exit_status_0(s3fs_mount, bucket):
    m = s3fs_mount(bucket)
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.wait(timeout=5)
    with pytest.raises(Failed) as ei:
        m.unmount()
    assert "was killed by SIGKILL after a clean unmount" in str(ei.value)
    assert not m.running and not mu.is_mounted(m.path)


def test_cleanup_gets_rid_of_a_hung_daemon(s3fs_mount, bucket):
    m = s3fs_mount(bucket)
    proc = m.proc
    os.kill(proc.pid, signal.SIGSTOP)  # every request into the mount now hangs
    with pytest.raises(Failed, match="did not return within 1s"):
        mu._bounded(lambda: os.listdir(m.path), 1, "listdir")
    t0 = time.monotonic()
    m.cleanup(timeout=1)  # lazy unmount, SIGTERM (stays pending), SIGKILL
    assert time.monotonic() - t0 < 4
    assert proc.returncode == -signal.SIGKILL
    assert not m.running and not mu.is_mounted(m.path)


def test_a_daemon_dying_right_after_mounting_fails_wait_for_mount(s3fs_mount, bucket):
    m = s3fs_mount(bucket)
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.wait(timeout=5)
    # the root's stat may come from the kernel's attribute cache: the exit status tells
    with pytest.raises(Failed, match="the daemon was killed by SIGKILL"):
        mu.wait_for_mount(m.proc, m.path, timeout=5)
    with pytest.raises(OSError) as ei:
        os.listdir(m.path)
    assert ei.value.errno == errno.ENOTCONN
    m.cleanup()
    assert not mu.is_mounted(m.path)


LOG = """\
2024-01-01 s3vfs: mounted t-test-x-error-1234 on /tmp/p/test_x_error_0/s3vfs-1
warn: retrying PUT a.txt after 503 SlowDown
expected error 42 from the fault proxy
==4711==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010
fs/ops_file.c:120:7: runtime error: signed integer overflow
s3vfs: FATAL: cannot open the cache database
free(): invalid pointer; Aborted
"""


def test_log_scan_reports_unexpected_lines_only():
    bad = mu.scan_log(LOG, allow=[r"^expected error \d+"],
                      scrub=["t-test-x-error-1234", "/tmp/p/test_x_error_0"])
    assert bad == [
        "==4711==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010",
        "fs/ops_file.c:120:7: runtime error: signed integer overflow",
        "s3vfs: FATAL: cannot open the cache database",
        "free(): invalid pointer; Aborted",
    ]
    # without scrubbing, the test's own name in a path is a hit
    assert mu.scan_log("mounted /tmp/p/test_x_error_0/s3vfs-1") != []
    assert mu.scan_log("==12== LeakSanitizer") != []
    with pytest.raises(Failed, match="(?s)unexpected lines.*runtime error"):
        mu.check_log(LOG, allow=[r"^expected error", r"AddressSanitizer", r"FATAL", "Abort"],
                     scrub=["t-test-x-error-1234", "/tmp/p/test_x_error_0"])
    mu.check_log("all fine\n")


def test_daemon_errors_fail_the_unmount_unless_allowed(s3fs_mount, bucket, s3):
    # s3fs cannot HEAD "dir/./" (RGW answers 403) and logs [ERR] lines when it lists "dir"
    s3.put_object(Bucket=bucket, Key="dir/./z", Body=b"z")
    s3.put_object(Bucket=bucket, Key="dir/ok", Body=b"ok")

    m = s3fs_mount(bucket)
    assert "ok" in os.listdir(m.path / "dir")
    with pytest.raises(Failed, match=r"(?s)unexpected lines.*\[ERR\] curl\.cpp:RequestPerform"):
        m.unmount()
    assert m.proc is None and not mu.is_mounted(m.path)  # unmounted cleanly all the same

    m = s3fs_mount(bucket, allow_log=[r"\[ERR\] curl\.cpp:RequestPerform\(\d+\): HTTP response "
                                      r"code 403", r"\[ERR\] s3fs\.cpp:multi_head_retry_callback",
                                      r"\[ERR\] s3fs_xml\.cpp:get_base_exp",
                                      r"\[WAN\] s3fs\.cpp:readdir_multi_head\(\d+\): error "
                                      r"occurred in multi request"])
    assert "ok" in os.listdir(m.path / "dir")
    m.unmount()


def test_s3vfs_fixture_stats_remount_and_cache_dir(s3vfs_mount, bucket, s3):
    m = s3vfs_mount(bucket, opts={"stat_ttl": 0, "loglevel": "info"})
    assert m.argv[1:4] == [bucket, str(m.path), "-f"]
    assert f"cache_dir={m.cache_dir}" in m.argv[5] and "stat_ttl=0" in m.argv[5]
    (m.path / "a.txt").write_bytes(b"via s3vfs")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"via s3vfs"
    stats = m.stats()
    assert stats["requests"]["put"] >= 1
    assert stats["requests"]["total"] >= stats["requests"]["put"]
    assert m.requests("put") == stats["requests"]["put"]

    m.remount()  # same options, same cache dir; the statistics start again
    assert f"cache_dir={m.cache_dir}" in m.argv[5]
    assert m.requests("put") == 0
    assert (m.path / "a.txt").read_bytes() == b"via s3vfs"
