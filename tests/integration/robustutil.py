# SPDX-License-Identifier: MIT
"""Helpers shared by the reliability and safety tests of issue 7 (test_faults.py,
test_crash.py, test_hostile.py, test_security.py): data and checksums, bounded calls into a
mount that may hang, the daemon's memory (VmRSS) watched while a test runs, a per-test
watchdog around the s3vfs_mount factory, kill -9 of a daemon, and multipart listings."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

MIB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def file_sha(path, chunk: int = MIB) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest(), n
            h.update(b)
            n += len(b)


def s3_sha(s3, bucket: str, key: str) -> tuple[str, int] | None:
    """(sha256, size) of an object as boto3 reads it, None if there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    h, n = hashlib.sha256(), 0
    for b in iter(lambda: body.read(MIB), b""):
        h.update(b)
        n += len(b)
    return h.hexdigest(), n


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def uploads(s3, bucket: str) -> list[tuple[str, str]]:
    """The multipart uploads in progress: (key, upload id)."""
    out = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        out += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
    return out


def lasting_uploads(s3, bucket: str, gap: float = 4.0) -> list[tuple[str, str]]:
    """The multipart uploads in progress now that are still in progress gap seconds later
    (by upload id): an upload that a background retry has in flight lasts a second or two;
    one that was left behind stays."""
    first = set(uploads(s3, bucket))
    if not first:
        return []
    time.sleep(gap)
    return sorted(first & set(uploads(s3, bucket)))


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


def timed(fn, timeout: float, what: str):
    """(result or the OSError raised, seconds taken), bounded like bounded()."""
    t0 = time.monotonic()
    try:
        r = bounded(fn, timeout, what)
    except OSError as e:
        r = e
    return r, time.monotonic() - t0


def wait_until(cond, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s", pytrace=False)
        time.sleep(interval)


@contextlib.contextmanager
def raises_errno(code: int):
    with pytest.raises(OSError) as ei:
        yield ei
    got = ei.value.errno
    assert got == code, (f"want {errno.errorcode[code]}, got "
                         f"{errno.errorcode.get(got, got)}: {ei.value}")


def write_file(path, data: bytes, chunk: int = MIB, fsync: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(data), chunk):
            assert os.write(fd, data[i:i + chunk]) == len(data[i:i + chunk])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


# --- the daemon's memory ---------------------------------------------------------------------

def proc_status(pid: int, field: str) -> int | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes, None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssWatch:
    """Samples a process's VmRSS every 50 ms; .peak is the highest seen. A process over
    kill_at bytes is killed (SIGKILL) at once, so that a runaway daemon cannot take the box
    down; .killed tells."""

    def __init__(self, pid: int, kill_at: int = 600 * MIB):
        self.pid = pid
        self.kill_at = kill_at
        self.peak = 0
        self.killed = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name=f"rss {pid}")
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.05):
            rss = proc_status(self.pid, "VmRSS")
            if rss is None:
                return
            self.peak = max(self.peak, rss)
            if rss > self.kill_at:
                self.killed = True
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                return

    def stop(self) -> int:
        self._stop.set()
        self._t.join(2)
        hwm = proc_status(self.pid, "VmHWM")
        if hwm:
            self.peak = max(self.peak, hwm)
        return self.peak


# --- mounts ----------------------------------------------------------------------------------

def make_watchdog_fixture(timeout: float):
    """A `mount` fixture: s3vfs_mount (conftest.py) whose daemons are killed when the test
    runs over timeout seconds, so that a call blocked in a hung mount returns and the test
    fails instead of hanging."""

    @pytest.fixture
    def mount(s3vfs_mount):
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

        timer = threading.Timer(timeout, fire)
        timer.daemon = True
        timer.start()
        yield make
        timer.cancel()
        if fired.is_set():
            pytest.fail(f"the test ran over {timeout:.0f}s: its mounts were killed",
                        pytrace=False)

    return mount


def kill9(m) -> None:
    """kill -9 of the daemon of mount m (a crash: no drain, no unmount), then the lazy
    unmount of what is left. m can be started again with m.start()."""
    assert m.proc is not None
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(10)
    m.cleanup()


def meta_db(m) -> Path:
    """The SQLite metadata cache of mount m: CACHE_DIR/<bucket>-<hash>/meta.db."""
    found = list(Path(m.cache_dir).glob("*/meta.db"))
    assert len(found) == 1, f"want one meta.db under {m.cache_dir}: {found}"
    return found[0]


def tree(root) -> dict[str, os.stat_result]:
    """Every path under root (relative) with its lstat."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[str(p.relative_to(root))] = p.lstat()
    return out
