# SPDX-License-Identifier: MIT
"""Mounting FUSE daemons in tests, the way sshfs's test/util.py does it.

A daemon runs in the foreground (-f) as a child of pytest, its stdout and stderr appended to
one log file. Three ways out, every one of them bounded in time:

  wait_for_mount(proc, mnt)  polls until mnt is mounted; fails AT ONCE if the daemon exits
  umount(mnt, proc)          the clean path: `fusermount3 -u`, then the daemon must exit with 0
  cleanup(mnt, proc)         the failure path: lazy unmount, SIGTERM, SIGKILL; never fails

After a clean unmount the daemon's log is scanned (LOG_PATTERN) and an unexpected line fails the
test; `allow` lists the regexes of the lines that are expected (sshfs conftest.py does this
with capfd).

Mount is a handle on one mount point that ties these together (start, unmount, remount,
cleanup, log); the pytest fixtures in conftest.py build them. Every daemon started here also
gets PR_SET_PDEATHSIG=SIGTERM, and the ones still running when Python exits are cleaned up,
so that a killed or crashed pytest does not leave mounts behind. (The death signal follows the
thread that started the daemon: start mounts from the test's own thread.)
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterable, Pattern, Union

import pytest

FUSERMOUNT = "fusermount3"

# What a daemon's log must not contain unless allowed: errors, crashes, sanitizer reports
# ("==1234==ERROR: AddressSanitizer", "==1234==ERROR: LeakSanitizer") and UBSan's
# "file.c:12:3: runtime error: ...". Case-insensitive, searched line by line.
LOG_PATTERN = re.compile(r"error|fatal|abort|==[0-9]+==|runtime error", re.IGNORECASE)

Regex = Union[str, Pattern[str]]

MOUNT_TIMEOUT = 30.0    # daemon start until the mount answers
EXIT_TIMEOUT = 30.0     # unmount until the daemon has exited
BUSY_TIMEOUT = 5.0      # how long `fusermount3 -u` is retried while the mount is busy
CLEANUP_TIMEOUT = 5.0   # each step of cleanup()


# --- mount table -----------------------------------------------------------------------------

def _unescape_mountinfo(field: str) -> str:
    # the kernel writes space, tab, newline and backslash in paths as \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(mnt: os.PathLike | str) -> bool:
    """Is mnt a mount point in this mount namespace? Reads /proc/self/mountinfo, so it never
    blocks on a hung daemon (os.path.ismount stats the FUSE root and can wait forever)."""
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4 and _unescape_mountinfo(fields[4]) == target:
                return True
    return False


# --- logs ------------------------------------------------------------------------------------

def read_log(log_path: os.PathLike | str | None, offset: int = 0) -> str:
    if log_path is None:
        return ""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _log_tail(log_path, offset: int = 0, lines: int = 40) -> str:
    text = read_log(log_path, offset).splitlines()
    if not text:
        return f"(log {log_path} is empty)" if log_path else "(no log)"
    shown = text[-lines:]
    more = f" (last {len(shown)} of {len(text)} lines)" if len(shown) < len(text) else ""
    return f"--- {log_path}{more} ---\n" + "\n".join(shown)


def scan_log(text: str, allow: Iterable[Regex] = (), pattern: Pattern[str] = LOG_PATTERN,
             scrub: Iterable[str] = ()) -> list[str]:
    """The lines of text that match pattern and none of the allow regexes (re.search).
    The scrub strings (say the mount point and the bucket, which carry the test's name) are
    cut out of each line before pattern is searched, so that a test named test_x_error does
    not trip on its own paths."""
    allowed = [re.compile(a) if isinstance(a, str) else a for a in allow]
    scrub = [s for s in scrub if s]
    bad = []
    for ln in text.splitlines():
        bare = ln
        for s in scrub:
            bare = bare.replace(s, "")
        if pattern.search(bare) and not any(a.search(ln) for a in allowed):
            bad.append(ln)
    return bad


def check_log(text: str, allow: Iterable[Regex] = (), pattern: Pattern[str] = LOG_PATTERN,
              what: str = "daemon log", scrub: Iterable[str] = ()) -> None:
    """Fail the test if text has a line that scan_log() reports."""
    bad = scan_log(text, allow, pattern, scrub)
    if bad:
        shown = "\n".join(bad[:20]) + (f"\n... and {len(bad) - 20} more" if len(bad) > 20 else "")
        pytest.fail(f"unexpected lines in the {what} (match {pattern.pattern!r}; pass an "
                    f"allow regex if they are expected):\n{shown}", pytrace=False)


# --- starting and stopping -------------------------------------------------------------------

def _exit_text(rc: int) -> str:
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_daemon(argv: list, log_path: os.PathLike | str, env: dict | None = None
                 ) -> subprocess.Popen:
    """Start argv (a daemon in the foreground) with stdout+stderr appended to log_path."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, preexec_fn=_set_pdeathsig)


def _bounded(fn, timeout: float, what: str):
    """Run fn() in a helper thread and wait at most timeout seconds for it. A call into a hung
    FUSE daemon blocks in the kernel; the thread then stays blocked until cleanup() kills the
    daemon, and the test fails now."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 — re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, name=f"bounded: {what}", daemon=True)
    t.start()
    t.join(max(timeout, 0.1))
    if t.is_alive():
        pytest.fail(f"{what} did not return within {timeout:.0f}s (is the daemon hung?)",
                    pytrace=False)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_for_mount(proc: subprocess.Popen, mnt: os.PathLike | str,
                   timeout: float = MOUNT_TIMEOUT, log_path=None, log_offset: int = 0) -> None:
    """Wait until mnt is mounted and its root answers a stat. Fails at once when the daemon
    exits, and after timeout seconds in any case, showing the daemon's log."""
    deadline = time.monotonic() + timeout
    while not is_mounted(mnt):
        rc = proc.poll()
        if rc is not None:
            pytest.fail(f"the daemon {_exit_text(rc)} before {mnt} was mounted\n"
                        f"{_log_tail(log_path, log_offset)}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"{mnt} was not mounted {timeout:.0f}s after the daemon started\n"
                        f"{_log_tail(log_path, log_offset)}", pytrace=False)
        time.sleep(0.02)
    # mounted: now the daemon must serve requests (and must not have died right after mounting;
    # os.path.ismount alone would say False then: it hides the ENOTCONN of the stat)
    try:
        ok = _bounded(lambda: os.stat(mnt) and os.path.ismount(mnt),
                      deadline - time.monotonic(), f"stat of the root of {mnt}")
    except OSError as e:
        rc = proc.poll()
        state = "runs" if rc is None else _exit_text(rc)
        pytest.fail(f"{mnt} is mounted but its root cannot be read: {e} (the daemon {state})\n"
                    f"{_log_tail(log_path, log_offset)}", pytrace=False)
    if not ok:
        pytest.fail(f"{mnt} is in the mount table but is not a mount point\n"
                    f"{_log_tail(log_path, log_offset)}", pytrace=False)
    rc = proc.poll()  # the kernel may answer that stat from its attribute cache
    if rc is not None:
        pytest.fail(f"the daemon {_exit_text(rc)} right after mounting {mnt}\n"
                    f"{_log_tail(log_path, log_offset)}", pytrace=False)


def umount(mnt: os.PathLike | str, proc: subprocess.Popen, timeout: float = EXIT_TIMEOUT,
           log_path=None, log_offset: int = 0) -> None:
    """Clean unmount: `fusermount3 -u mnt` (retried for a few seconds while the mount is
    busy), then the daemon must exit, with status 0, within timeout seconds. On failure the
    test fails and the caller runs cleanup()."""
    busy_deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            r = subprocess.run([FUSERMOUNT, "-u", str(mnt)], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=CLEANUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{FUSERMOUNT} -u {mnt} did not return within {CLEANUP_TIMEOUT:.0f}s",
                        pytrace=False)
        if r.returncode == 0:
            break
        if "busy" in r.stderr and time.monotonic() < busy_deadline:
            time.sleep(0.1)
            continue
        state = "running" if proc.poll() is None else _exit_text(proc.returncode)
        pytest.fail(f"{FUSERMOUNT} -u {mnt} failed (exit {r.returncode}): {r.stderr.strip()}; "
                    f"the daemon {state}\n{_log_tail(log_path, log_offset)}", pytrace=False)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the daemon (pid {proc.pid}) was still running {timeout:.0f}s after "
                    f"{mnt} was unmounted\n{_log_tail(log_path, log_offset)}", pytrace=False)
    if rc != 0:
        pytest.fail(f"the daemon {_exit_text(rc)} after a clean unmount of {mnt} (want 0)\n"
                    f"{_log_tail(log_path, log_offset)}", pytrace=False)
    if is_mounted(mnt):
        pytest.fail(f"{mnt} is still mounted after {FUSERMOUNT} -u", pytrace=False)


def cleanup(mnt: os.PathLike | str, proc: subprocess.Popen | None,
            timeout: float = CLEANUP_TIMEOUT) -> None:
    """The failure path: lazy unmount, then SIGTERM, then SIGKILL, each step bounded by
    timeout. Never raises; it only acts on this mount point and this process."""
    try:
        subprocess.run([FUSERMOUNT, "-u", "-z", str(mnt)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if proc is None or proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
        except OSError:
            return


# --- a handle on one mount -------------------------------------------------------------------

_LIVE: set["Mount"] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _cleanup_leftovers() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for m in live:
        m.cleanup()


class Mount:
    """One FUSE daemon on one mount point, started with argv (which must keep it in the
    foreground). .path is the mount point, .log the whole log (every start appends to it).

    allow: regexes of log lines that are expected (see check_log); pattern: what is scanned
    for; scrub: strings cut out of each line before scanning (the mount point and the log's
    directory always are).
    """

    def __init__(self, argv: list, path: os.PathLike | str, log_path: os.PathLike | str,
                 env: dict | None = None, allow: Iterable[Regex] = (),
                 pattern: Pattern[str] = LOG_PATTERN, name: str = "daemon",
                 mount_timeout: float = MOUNT_TIMEOUT, exit_timeout: float = EXIT_TIMEOUT,
                 scrub: Iterable[str] = ()):
        self.argv = [str(a) for a in argv]
        self.path = Path(path)
        self.log_path = Path(log_path)
        self.env = env
        self.allow = list(allow)
        self.pattern = pattern
        self.scrub = [str(self.path), str(self.log_path.parent), *scrub]
        self.name = name
        self.mount_timeout = mount_timeout
        self.exit_timeout = exit_timeout
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"<{self.name} on {self.path}, log {self.log_path}>"

    @property
    def running(self) -> bool:
        """Started and not yet unmounted or cleaned up (the daemon may have died meanwhile)."""
        return self.proc is not None

    @property
    def log(self) -> str:
        return read_log(self.log_path)

    @property
    def run_log(self) -> str:
        """The log of the current (or last) start only."""
        return read_log(self.log_path, self._log_offset)

    def start(self) -> "Mount":
        assert self.proc is None, f"{self} is already running"
        self.path.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = start_daemon(self.argv, self.log_path, self.env)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            wait_for_mount(self.proc, self.path, self.mount_timeout, self.log_path,
                           self._log_offset)
        except BaseException:
            self.cleanup()
            raise
        return self

    def unmount(self) -> None:
        """Clean unmount: exit status 0 required, then the log of this run is scanned."""
        assert self.proc is not None, f"{self} is not running"
        try:
            umount(self.path, self.proc, self.exit_timeout, self.log_path, self._log_offset)
        except BaseException:
            self.cleanup()
            raise
        self._forget()
        check_log(self.run_log, self.allow, self.pattern, what=f"log of {self}",
                  scrub=self.scrub)

    def remount(self) -> "Mount":
        """Clean unmount, then the same command on the same mount point again."""
        self.unmount()
        return self.start()

    def cleanup(self, timeout: float = CLEANUP_TIMEOUT) -> None:
        """The failure path; a no-op when not running."""
        if self.proc is None:
            return
        cleanup(self.path, self.proc, timeout)
        self._forget()

    def _forget(self) -> None:
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)


def unmount_all(mounts: Iterable[Mount], failed: bool) -> None:
    """Teardown of a fixture: the mounts still running are unmounted cleanly, in parallel,
    when the test passed (failing with every problem found), and cleaned up when it failed."""
    live = [m for m in mounts if m.running]
    if failed:
        for m in live:
            m.cleanup()
        return
    errors: list[str] = []

    def one(m: Mount) -> None:
        try:
            m.unmount()
        except BaseException as e:  # noqa: BLE001 — pytest.fail raises a BaseException
            errors.append(f"{m}: {e}")

    threads = [threading.Thread(target=one, args=(m,), name=f"unmount {m.path}") for m in live]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # bounded: every step of unmount() and cleanup() is
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


class S3vfsMount(Mount):
    """A Mount of s3vfs: adds the run-time statistics of the mount (see DESIGN.md)."""

    STATS_XATTR = "user.s3vfs.stats"
    cache_dir: Path | None = None

    def stats(self) -> dict:
        """The parsed JSON of the stats xattr on the mount's root, e.g.
        {"requests": {"head": N, "get": N, "put": N, "list": N, ..., "total": N}, ...}."""
        return json.loads(os.getxattr(self.path, self.STATS_XATTR))

    def requests(self, op: str = "total") -> int:
        return self.stats()["requests"][op]
