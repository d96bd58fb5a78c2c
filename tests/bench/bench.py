#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The benchmark of issue 4: s3vfs, Debian's s3fs and `rclone mount --vfs-cache-mode full`
side by side on one local Ceph RGW, with the raw endpoint (curl) as the ceiling.

    /usr/bin/python3 tests/bench/bench.py [--size-mib 256] [--only s3vfs,s3fs,rclone,raw]
                                          [--phases 1,2,...] [--quick] [--json FILE]
                                          [--markdown FILE]

It starts its own RGW in a fresh directory under /tmp (or reuses the servers of
S3VFS_TEST_SERVERS=DIR, as the integration tests do, and leaves them running), gives every
filesystem its own bucket, runs the phases, prints a Markdown report and writes JSON.
Phases (README.md has the details and the reasons for each choice):

  1 write one SIZE file sequentially, including close (and, for rclone, whose close returns
    before the upload, until the object is in S3)
  2 read it cold: unmount, empty cache dirs, drop the page cache, mount, read
  3 read it warm: again on the same mount; 3b after dropping the page cache (served by the
    filesystem's disk cache); 3c reading the filesystem's cache file itself (the reference)
  4 create 1,000 files of 4 KiB
  5 cold `ls -l` (fresh mount, empty caches) of those 1,000 files (5a) and of a
    10,000-object prefix written through the S3 API (5b)
  6 100 stats of one file (after one stat that loads it)
  7 rename a directory of 100 files
  8 random 4 KiB reads over the SIZE file with fio, on a cold mount
  9 time until an object overwritten through the S3 API is seen through the mount
 10 (opt-in: --phases ...,10) nginx serving a 10 KiB page from the mount (cached), requests/s
    with wrk, against the same page from a local directory in the same run; 10b the same
    with nginx's open_file_cache

Requests are counted on the wire, the same way for everyone: phases 4-7 and 9 go through a
counting proxy (countproxy.py) that sees every request's head; the throughput phases 1-3
and 8 go straight to RGW (the proxy costs 3-10 % of a single stream) and are counted from
RGW's access log (the "beast:" lines of rgw.log, on by default at debug_rgw 1). s3vfs's own
statistics xattr is recorded beside them in the JSON.

Every wait is bounded; every mount and process it starts is stopped by its PID at the end
(also after an error or Ctrl-C); a filesystem that fails a phase gets the error in its cell
and the run goes on.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import local_servers as ls  # noqa: E402
import nginxutil as nx  # noqa: E402
from countproxy import CountingProxy  # noqa: E402

MIB = 1 << 20
FUSERMOUNT = "fusermount3"
TARGETS = ("raw", "s3vfs", "s3fs", "rclone")
ALL_PHASES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
DEFAULT_PHASES = (1, 2, 3, 4, 5, 6, 7, 8, 9)  # phase 10 (nginx) is opt-in: --phases ...,10
DIRECT_PHASES = {1, 2, 3, 8}  # throughput: straight to RGW unless --proxy-all

# rows of the report: (row id, phase number, label template)
ROWS = [
    ("1", 1, "1 write {size} (incl. close)"),
    ("2", 2, "2 read {size}, cold (remount)"),
    ("3", 3, "3 read {size}, warm (same mount)"),
    ("3b", 3, "3b warm, page cache dropped"),
    ("3c", 3, "3c ref: read the cache file itself"),
    ("4", 4, "4 create {small} files of 4 KiB"),
    ("5a", 5, "5a cold `ls -l`, {small} files"),
    ("5b", 5, "5b cold `ls -l`, {many} objects"),
    ("6", 6, "6 {stats} stats of one file"),
    ("7", 7, "7 rename a dir of {rename} files"),
    ("8", 8, "8 random 4 KiB reads (fio)"),
    ("9", 9, "9 overwrite seen through the mount"),
    ("10", 10, "10 nginx, 10 KiB page (wrk -c{wrk_conns})"),
    ("10b", 10, "10b nginx + open_file_cache"),
]
OP_ORDER = ["list", "head", "get", "put", "copy", "delete", "delete_multi", "mpu_create",
            "mpu_part", "mpu_part_copy", "mpu_complete", "mpu_abort", "mpu_list",
            "mpu_list_parts", "head_bucket", "bucket_other", "bucket_create", "put_other",
            "post_other", "other"]
OP_SHORT = {"list": "LIST", "head": "HEAD", "get": "GET", "put": "PUT", "copy": "COPY",
            "delete": "DEL", "delete_multi": "DELMULTI", "mpu_create": "MPU-init",
            "mpu_part": "MPU-part", "mpu_part_copy": "MPU-partcopy",
            "mpu_complete": "MPU-done", "mpu_abort": "MPU-abort", "mpu_list": "MPU-list",
            "mpu_list_parts": "MPU-parts", "head_bucket": "HEAD-bucket",
            "bucket_other": "bucket-other", "bucket_create": "mkbucket",
            "put_other": "PUT-other", "post_other": "POST-other", "other": "other"}


NGINX_PAGE = "www/page.html"  # phase 10's page, in every bucket and in the local directory
NGINX_OPEN_FILE_CACHE = ("open_file_cache max=1000 inactive=20s; "
                         "open_file_cache_valid 1s;")


class BenchError(Exception):
    """A phase or a mount failed; the message goes into the table."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- small helpers ---------------------------------------------------------------------------

def drop_caches() -> bool:
    """sync, then drop the page cache, dentries and inodes (root only)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def bounded(fn, timeout: float, what: str):
    """fn() in a helper thread, waited for at most timeout seconds (a call into a hung FUSE
    daemon blocks in the kernel until the daemon is killed)."""
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
        raise BenchError(f"{what}: no answer within {timeout:.0f}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def is_mounted(mnt: Path) -> bool:
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4 and re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                          fields[4]) == target:
                return True
    return False


def read_file(path: Path, bufsize: int = MIB, hasher=None) -> int:
    """Read path sequentially to the end; return the byte count."""
    buf = bytearray(bufsize)
    mv = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return total
            if hasher is not None:
                hasher.update(mv[:n])
            total += n


def vm_hwm(pid: int) -> int | None:
    """Peak resident set size (VmHWM) of pid, in bytes."""
    try:
        for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def extents(path: Path) -> int | None:
    """The number of extents of a file on disk (filefrag), None if unknown: a cache file
    filled out of order can be fragmented, and reads slower than one written in order."""
    try:
        r = subprocess.run(["filefrag", str(path)], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        m = re.search(r"(\d+) extents? found", r.stdout)
        return int(m.group(1)) if m else None
    except (OSError, subprocess.TimeoutExpired):
        return None


WRK_LAT = re.compile(r"Latency\s+([\d.]+)(us|ms|s)\b")


def run_wrk(port: int, path: str, seconds: int, conns: int) -> dict:
    """wrk -t1 -cN -dS on one URL: requests/s, responses, average latency. Non-2xx answers
    or socket errors are an error (the cell shows it)."""
    url = f"http://127.0.0.1:{port}/{path}"
    r = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", url], capture_output=True,
                       text=True, timeout=seconds + 60, stdin=subprocess.DEVNULL)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if r.returncode != 0 or not m or not n:
        raise BenchError(f"wrk: exit {r.returncode}: {(r.stderr or out).strip()[:150]}")
    if "Non-2xx" in out or "Socket errors" in out:
        bad = [ln.strip() for ln in out.splitlines() if "Non-2xx" in ln or "Socket" in ln]
        raise BenchError(f"wrk: {'; '.join(bad)[:150]}")
    lat = WRK_LAT.search(out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    secs = float(n.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[n.group(3)]
    return {"rps": float(m.group(1)), "responses": int(n.group(1)), "seconds": secs,
            "latency_ms": float(lat.group(1)) * scale[lat.group(2)] if lat else None,
            "argv": f"wrk -t1 -c{conns} -d{seconds}s URL"}


def fmt_bytes(n: float) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def fmt_s(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def cmd_version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        out = (p.stdout or p.stderr).strip().splitlines()
        return out[0].strip() if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


# --- request counting: the proxy for counted phases, RGW's access log for direct ones ---------

BEAST = re.compile(r'beast: \S+ \S+ - \S+ \[[^\]]*\] "(\S+) (\S+) HTTP/[\d.]+" (\d+) (\d+) \S+ '
                   r'(?:"([^"]*)"|-)')


class RgwLog:
    """Counts requests from the "beast:" access lines of rgw.log (method, URI, status, bytes,
    user agent), for one bucket, leaving out the benchmark's own boto3 calls. Headers are not
    logged: a server-side copy would count as a PUT (there are none in the direct phases)."""

    def __init__(self, server: ls.S3Server):
        self.path = server.log
        self.asok = server.dir / "run" / "rgw.asok"

    def offset(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def flush(self) -> None:
        # the admin socket protocol: a JSON command, NUL; the answer is length-prefixed
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.asok))
                s.sendall(b'{"prefix": "log flush"}\0')
                s.recv(65536)
        except OSError:
            time.sleep(0.5)  # the log thread writes within milliseconds anyway

    def count(self, start: int, bucket: str) -> dict | None:
        from countproxy import classify
        self.flush()
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        req: dict[str, int] = {}
        down = up = 0
        for m in BEAST.finditer(text):
            method, uri, _status, nbytes, agent = m.groups()
            if not (uri == f"/{bucket}" or uri.startswith((f"/{bucket}/", f"/{bucket}?"))):
                continue
            if agent and re.search(r"boto", agent, re.I):
                continue
            op = classify(method, uri, {})
            req[op] = req.get(op, 0) + 1
            if method == "GET":
                down += int(nbytes)
            elif method == "PUT":
                up += int(nbytes)
        req["total"] = sum(req.values())
        return {"requests": req, "bytes_down": down, "bytes_up": up}


# --- the filesystems -------------------------------------------------------------------------

class Target:
    """One filesystem under test, on its own bucket: mount (direct or via the proxy, with
    fresh or kept caches), unmount, and the numbers that belong to its processes."""

    name = "?"
    closes_durably = True  # close() returns after the object is in S3

    def __init__(self, bench: "Bench"):
        self.b = bench
        self.bucket = f"bench-{self.name}-{bench.run_id}"
        self.dir = bench.work / self.name
        self.mnt = self.dir / "mnt"
        self.cache = self.dir / "cache"
        self.log_path = self.dir / "daemon.log"
        self.proc: subprocess.Popen | None = None
        self.via_proxy: bool | None = None
        self.served: set[int] = set()     # phases 1-3 served by the current process
        self.rss: dict[str, int] = {}     # "phases 1-3" process → VmHWM
        self.mounts = 0

    # subclasses: the command line and its environment
    def argv(self, endpoint: str) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return ls.aws_env(self.b.server)

    def settings(self) -> str:
        return " ".join(self.argv("ENDPOINT"))

    def own_stats(self) -> dict | None:
        return None

    @property
    def mounted(self) -> bool:
        return self.proc is not None

    def mount(self, via_proxy: bool, fresh: bool) -> None:
        """Start the daemon; with fresh, every cache dir is emptied first and the page cache
        dropped (a cold start)."""
        assert self.proc is None
        if fresh:
            shutil.rmtree(self.cache, ignore_errors=True)
            drop_caches()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.mnt.mkdir(parents=True, exist_ok=True)
        endpoint = self.b.proxy.endpoint if via_proxy else self.b.server.endpoint
        argv = self.argv(endpoint)
        with open(self.log_path, "ab") as lf:
            lf.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            lf.flush()
            # started from the main thread only: PR_SET_PDEATHSIG follows the starting thread
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=subprocess.STDOUT, env=self.env(),
                                         preexec_fn=_pdeathsig)
        self.b.live.add(self)
        self.via_proxy = via_proxy
        self.served = set()
        self.mounts += 1
        try:
            deadline = time.monotonic() + 30
            while not is_mounted(self.mnt):
                rc = self.proc.poll()
                if rc is not None:
                    raise BenchError(f"{self.name} exited with {rc} before mounting: "
                                     f"{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name} did not mount within 30s: {self.log_tail()}")
                time.sleep(0.02)
            bounded(lambda: os.stat(self.mnt), 30, f"{self.name}: stat of the mount root")
        except BaseException:
            self.kill()
            raise

    def log_tail(self, n: int = 3) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines()
                     if ln.strip() and not ln.startswith("===")]
        except OSError:
            return ""
        bad = [ln for ln in lines[-30:] if re.search(r"error|fatal|fail|abort", ln, re.I)]
        return " | ".join((bad or lines)[-n:])[-300:]

    def note_rss(self) -> None:
        if self.proc is not None and self.served & {1, 2, 3}:
            hwm = vm_hwm(self.proc.pid)
            if hwm is not None:
                key = "+".join(str(p) for p in sorted(self.served & {1, 2, 3}))
                self.rss[key] = max(self.rss.get(key, 0), hwm)
            self.served -= {1, 2, 3}  # later phases of this process do not count

    def unmount(self) -> None:
        """Clean unmount: fusermount3 -u (retried while busy), then the daemon must exit,
        within 60s (s3vfs waits for pending uploads). Failing that, kill() and raise."""
        if self.proc is None:
            return
        self.note_rss()
        try:
            deadline = time.monotonic() + 10
            while True:
                r = subprocess.run([FUSERMOUNT, "-u", str(self.mnt)], capture_output=True,
                                   text=True, timeout=15, stdin=subprocess.DEVNULL)
                if r.returncode == 0 or not is_mounted(self.mnt):
                    break
                if "busy" in r.stderr and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise BenchError(f"{FUSERMOUNT} -u {self.mnt}: {r.stderr.strip()}")
            rc = self.proc.wait(timeout=60)
            if rc != 0:
                raise BenchError(f"{self.name} exited with status {rc} at unmount: "
                                 f"{self.log_tail()}")
        except subprocess.TimeoutExpired as e:
            self.kill()
            raise BenchError(f"{self.name}: unmount did not finish in time") from e
        except BaseException:
            self.kill()
            raise
        self.proc = None
        self.b.live.discard(self)

    def kill(self) -> None:
        """The failure path: lazy unmount, SIGTERM, SIGKILL (this PID only), bounded."""
        try:
            subprocess.run([FUSERMOUNT, "-u", "-z", str(self.mnt)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        p = self.proc
        if p is not None and p.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    p.send_signal(sig)
                    p.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except OSError:
                    break
        self.proc = None
        self.b.live.discard(self)

    def ensure(self, via_proxy: bool, fresh: bool = False) -> None:
        """A mount with this endpoint; fresh forces a cold remount."""
        if self.proc is not None and self.proc.poll() is not None:
            self.kill()  # died: start again
        if self.proc is not None and not fresh and self.via_proxy == via_proxy:
            return
        if self.proc is not None:
            self.unmount()
        self.mount(via_proxy, fresh)


class S3vfs(Target):
    name = "s3vfs"

    def argv(self, endpoint: str) -> list[str]:
        b = self.b
        opts = [f"endpoint={endpoint}", f"region={b.server.region}", "use_path_request_style",
                f"cache_dir={self.cache}", f"stat_ttl={b.cfg.stat_ttl}", "loglevel=warn"]
        if b.args.s3vfs_opts:
            opts.append(b.args.s3vfs_opts)
        return [str(b.s3vfs_bin), self.bucket, str(self.mnt), "-f", "-o", ",".join(opts)]

    def own_stats(self) -> dict | None:
        try:
            return json.loads(os.getxattr(self.mnt, "user.s3vfs.stats"))
        except (OSError, ValueError):
            return None


class S3fs(Target):
    name = "s3fs"

    def argv(self, endpoint: str) -> list[str]:
        b = self.b
        opts = [f"url={endpoint}", "use_path_request_style", f"passwd_file={b.passwd}",
                f"stat_cache_expire={b.cfg.stat_ttl}", f"use_cache={self.cache}",
                "dbglevel=warn"]
        if b.args.s3fs_opts:
            opts.append(b.args.s3fs_opts)
        return ["s3fs", self.bucket, str(self.mnt), "-f", "-o", ",".join(opts)]


class Rclone(Target):
    name = "rclone"
    closes_durably = False  # the VFS cache uploads after close (--vfs-write-back)

    def env(self) -> dict:
        env = super().env()
        env.update({"RCLONE_CONFIG": str(self.b.work / "rclone.conf"),
                    "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Ceph",
                    "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": self.b.server.access_key,
                    "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": self.b.server.secret_key,
                    "RCLONE_CONFIG_BENCH_REGION": self.b.server.region,
                    "RCLONE_CONFIG_BENCH_ENDPOINT": self._endpoint})
        return env

    _endpoint = ""

    def argv(self, endpoint: str) -> list[str]:
        self._endpoint = endpoint
        ttl = self.b.cfg.stat_ttl
        argv = ["rclone", "mount", f"bench:{self.bucket}", str(self.mnt),
                "--vfs-cache-mode", "full", "--cache-dir", str(self.cache),
                "--dir-cache-time", f"{ttl}s", "--poll-interval", "0",
                "--vfs-write-back", "0s", "--log-level", "NOTICE"]
        if self.b.args.rclone_opts:
            argv += self.b.args.rclone_opts.split()
        return argv

    def settings(self) -> str:
        return " ".join(self.argv("ENDPOINT")) + " (remote bench: type=s3 provider=Ceph " \
            "endpoint=ENDPOINT, via RCLONE_CONFIG_BENCH_* variables)"


def _pdeathsig() -> None:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


# --- configuration ---------------------------------------------------------------------------

class Config:
    def __init__(self, args):
        q = args.quick
        self.size = (args.size_mib or (16 if q else 256)) * MIB
        self.small = 50 if q else 1000
        self.many = 500 if q else 10000
        self.rename = 20 if q else 100
        self.stats = 100
        self.fio_runtime = 2 if q else 20
        self.raw_random = 200 if q else 2000
        self.stat_ttl = args.stat_ttl if args.stat_ttl is not None else (2 if q else 10)
        self.phase_timeout = 90 if q else 600
        self.settle = 0.3 if q else 1.0
        self.raw_reps = 1 if q else 3
        self.wrk_seconds = 2 if q else 10
        self.wrk_conns = 16
        self.page_size = 10 * 1024

    def as_dict(self) -> dict:
        return dict(vars(self))


# --- the benchmark ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = Config(args)
        self.run_id = uuid.uuid4().hex[:8]
        self.phases = set(args.phases)
        self.targets = [t for t in TARGETS if t in args.only]
        self.live: set[Target] = set()
        self.results: dict[tuple[str, str], dict] = {}  # (target, row) → result
        self.notes: list[str] = []
        self.server: ls.S3Server | None = None
        self.proxy: CountingProxy | None = None
        self.own_server_dir: Path | None = None
        # servers of runs that were killed (their owner process is gone)
        ls.reap_stale(os.path.join(args.workdir, "s3vfs-bench-*"))
        self.work = Path(tempfile.mkdtemp(prefix="s3vfs-bench-", dir=args.workdir))
        self.src = self.work / "src.bin"
        self.src_sha = ""
        self.buckets: list[str] = []
        build = Path(args.build_dir or os.environ.get("S3VFS_BUILD") or REPO / "build")
        self.s3vfs_bin = build.resolve() / "s3vfs"
        self.passwd = self.work / "s3fs.passwd"
        self.raw_bucket = f"bench-raw-{self.run_id}"
        self.nginxes: set[nx.Nginx] = set()
        # phase 10's page (the same bytes everywhere) and its local-disk copy
        para = b"<p>" + b"0123456789abcdef" * 60 + b"</p>\n"
        self.page = (b"<!doctype html><title>bench</title>\n" +
                     para * (self.cfg.page_size // len(para) + 1))[:self.cfg.page_size]
        self.local_root = self.work / "local-www"

    # --- servers ---

    def start_server(self) -> None:
        env_dir = os.environ.get("S3VFS_TEST_SERVERS")
        if env_dir:
            d = Path(env_dir).resolve() / "rgw"
            log(f"using the RGW in {d} (S3VFS_TEST_SERVERS; left running)")
        else:
            d = self.work / "rgw"
            self.own_server_dir = d
            ls.claim(self.work)  # a later run stops it if this one is killed
            log(f"starting RGW in {d}")
        self.server = ls.start_rgw(d)
        log(f"RGW at {self.server.endpoint}")
        self.s3 = self.server.client(max_pool_connections=64)
        self.rgwlog = RgwLog(self.server)
        self.proxy = CountingProxy(self.server.host, self.server.port)
        fd = os.open(self.passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{self.server.access_key}:{self.server.secret_key}\n")
        (self.work / "rclone.conf").write_text("")

    def mkbucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def make_source(self) -> None:
        h = hashlib.sha256()
        with open(self.src, "wb") as f:
            left = self.cfg.size
            while left:
                chunk = os.urandom(min(left, 8 * MIB))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        self.src_sha = h.hexdigest()

    def put_many(self, jobs: list[tuple[str, str, bytes]]) -> None:
        """PUT (bucket, key, body) objects through the S3 API, 48 threads, bounded."""
        with cf.ThreadPoolExecutor(48) as ex:
            list(ex.map(lambda j: self.s3.put_object(Bucket=j[0], Key=j[1], Body=j[2]), jobs,
                        timeout=900))

    def prepare(self, targets: list[Target]) -> None:
        """Every bucket, and what the selected phases read that no selected phase writes:
        the 10,000-object prefix of phase 5, and the files of phases 1 and 4 if those do
        not run. Done up front, before anything is timed."""
        cfg, P = self.cfg, self.phases
        buckets = [t.bucket for t in targets]
        if "raw" in self.targets:
            buckets.append(self.raw_bucket)
        jobs = []
        for b in buckets:
            self.mkbucket(b)
            if 5 in P:
                jobs += [(b, f"many/o{i:05d}", b"") for i in range(cfg.many)]
            if P & {5, 6} and 4 not in P:
                jobs += [(b, f"small/f{i:04d}", f"small/f{i:04d}".encode().ljust(4096, b"."))
                         for i in range(cfg.small)]
        if "raw" in self.targets and 7 in P:
            jobs += [(self.raw_bucket, f"ren/f{i:03d}", b"r" * 4096) for i in range(cfg.rename)]
        if 10 in P:
            jobs += [(t.bucket, NGINX_PAGE, self.page) for t in targets]
            (self.local_root / NGINX_PAGE).parent.mkdir(parents=True, exist_ok=True)
            (self.local_root / NGINX_PAGE).write_bytes(self.page)
        if jobs:
            log(f"writing {len(jobs):,} objects through the S3 API ({len(buckets)} buckets)")
            self.put_many(jobs)
        if P & {2, 3, 8} and 1 not in P:
            for t in targets:
                self.s3.upload_file(str(self.src), t.bucket, "big.bin")

    def count_keys(self, bucket: str, prefix: str) -> int:
        n = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
            n += len(page.get("Contents", []))
        return n

    # --- bookkeeping of one measurement ---

    def begin(self, t: Target) -> dict:
        return {"proxy": self.proxy.snapshot(), "log": self.rgwlog.offset(),
                "own": t.own_stats() if t else None, "t0": time.monotonic()}

    def settle_proxy(self) -> None:
        """Wait until the proxy saw no new request for cfg.settle seconds (bounded)."""
        deadline = time.monotonic() + 15
        last = self.proxy.snapshot()["requests"]["total"]
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.proxy.snapshot()["requests"]["total"]
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= self.cfg.settle:
                return

    def end(self, t: Target | None, mark: dict, bucket: str, via_proxy: bool) -> dict:
        """The requests since mark, after the client went quiet."""
        if via_proxy:
            self.settle_proxy()
            d = CountingProxy.delta(self.proxy.snapshot(), mark["proxy"])
            out = {"requests": d["requests"], "bytes_up": d["bytes_up"],
                   "bytes_down": d["bytes_down"], "counted_by": "proxy"}
        else:
            time.sleep(self.cfg.settle)
            c = self.rgwlog.count(mark["log"], bucket)
            out = ({"requests": c["requests"], "bytes_up": c["bytes_up"],
                    "bytes_down": c["bytes_down"], "counted_by": "rgw-log"} if c else
                   {"requests": None, "counted_by": "unknown"})
        if t is not None and mark.get("own"):
            now = t.own_stats()
            if now:
                out["s3vfs_stats"] = {
                    "requests": {k: v - mark["own"]["requests"].get(k, 0)
                                 for k, v in now["requests"].items()
                                 if v - mark["own"]["requests"].get(k, 0)},
                    **{k: now[k] - mark["own"].get(k, 0) for k in ("bytes_up", "bytes_down")
                       if isinstance(now.get(k), int)}}
                out["s3vfs_stats"]["requests"].setdefault("total", 0)
        return out

    def record(self, target: str, row: str, **kw) -> dict:
        r = {"target": target, "row": row, **kw}
        self.results[(target, row)] = r
        if kw.get("error"):
            log(f"{target} {row}: ERROR {kw['error']}")
        else:
            log(f"{target} {row}: {fmt_cell(r)}  requests: {fmt_requests(r)}")
        return r

    # --- phase runner ---

    def run_phase(self, t: Target, rows: list[str], phase: int, via_proxy: bool,
                  fresh: bool, body) -> None:
        """Mount as asked (main thread), then body() in a worker thread, bounded by
        phase_timeout; on a failure every row of the phase gets the error."""
        try:
            t.ensure(via_proxy, fresh)
            if phase in (1, 2, 3):
                t.served.add(phase)
            bounded(body, self.cfg.phase_timeout, f"phase {phase}")
        except BaseException as e:  # noqa: BLE001 — recorded, the run goes on
            if isinstance(e, KeyboardInterrupt):
                raise
            msg = f"{type(e).__name__}: {e}" if not isinstance(e, BenchError) else str(e)
            msg = msg.replace("\n", " ")[:200]
            for row in rows:
                if (t.name, row) not in self.results:
                    self.record(t.name, row, error=msg)
            if "no answer within" in msg or (t.proc is not None and t.proc.poll() is not None):
                t.kill()  # hung or dead: the next phase mounts again

    # --- the filesystems' phases ---

    def run_target(self, t: Target) -> None:
        cfg, P = self.cfg, self.phases
        proxied = lambda phase: self.args.proxy_all or phase not in DIRECT_PHASES  # noqa: E731
        big = t.mnt / "big.bin"

        if 1 in P:
            def p1():
                mark = self.begin(t)
                t_close, wall = self.write_big(t, "big.bin", mark["t0"])
                req = self.end(t, mark, t.bucket, proxied(1))
                self.record(t.name, "1", wall_s=wall, close_s=t_close,
                            mib_s=cfg.size / MIB / wall, **req)
            self.run_phase(t, ["1"], 1, proxied(1), False, p1)

        if 2 in P or 3 in P:
            def p2():
                mark = self.begin(t)
                n = read_file(big)
                wall = time.monotonic() - mark["t0"]
                if n != cfg.size:
                    raise BenchError(f"read {n} bytes, want {cfg.size}")
                self.record(t.name, "2", wall_s=wall, mib_s=n / MIB / wall,
                            **self.end(t, mark, t.bucket, proxied(2)))
            self.run_phase(t, ["2"], 2, proxied(2), True, p2)

        if 3 in P:
            def p3():
                if 2 not in P:
                    read_file(big)  # warm it up: phase 2's read did not run
                mark = self.begin(t)
                n = read_file(big)
                wall = time.monotonic() - mark["t0"]
                req = self.end(t, mark, t.bucket, proxied(3))
                h = hashlib.sha256()
                read_file(big, hasher=h)
                ok = h.hexdigest() == self.src_sha
                self.record(t.name, "3", wall_s=wall, mib_s=n / MIB / wall, verified=ok,
                            **req)
                if not ok:
                    raise BenchError("content differs from what was written")
                # 3b: the page cache dropped: served by the filesystem's own (disk) cache
                drop_caches()
                mark = self.begin(t)
                n = read_file(big)
                wall = time.monotonic() - mark["t0"]
                self.record(t.name, "3b", wall_s=wall, mib_s=n / MIB / wall,
                            **self.end(t, mark, t.bucket, proxied(3)))
                # 3c: the reference: the largest cache file (allocated bytes), read cold
                files = [p for p in t.cache.rglob("*") if p.is_file()]
                files = [p for p in files if p.stat().st_blocks * 512 >= cfg.size // 2]
                if not files:
                    self.record(t.name, "3c", na="no cache file of the object's size",
                                requests=None)
                    return
                ref = max(files, key=lambda p: p.stat().st_blocks)
                drop_caches()
                t0 = time.monotonic()
                n = read_file(ref)
                wall = time.monotonic() - t0
                self.record(t.name, "3c", wall_s=wall, mib_s=n / MIB / wall,
                            file=str(ref.relative_to(t.cache)), extents=extents(ref),
                            requests=None)
            self.run_phase(t, ["3", "3b", "3c"], 3, proxied(3), False, p3)
        if t.mounted:
            t.note_rss()

        if 4 in P:
            def p4():
                (t.mnt / "small").mkdir(exist_ok=True)
                mark = self.begin(t)
                for i in range(cfg.small):
                    with open(t.mnt / "small" / f"f{i:04d}", "wb") as f:
                        f.write(f"small/f{i:04d}".encode().ljust(4096, b"."))
                t_close = time.monotonic() - mark["t0"]
                if not t.closes_durably:
                    wait_until(lambda: self.count_keys(t.bucket, "small/f") >= cfg.small,
                               cfg.phase_timeout, "the files in S3", 0.2)
                wall = time.monotonic() - mark["t0"]
                self.record(t.name, "4", wall_s=wall, close_s=t_close,
                            files_s=cfg.small / wall, **self.end(t, mark, t.bucket,
                                                                 proxied(4)))
            self.run_phase(t, ["4"], 4, proxied(4), False, p4)

        if 5 in P:
            for row, sub, want in (("5a", "small", cfg.small), ("5b", "many", cfg.many)):
                def p5(row=row, sub=sub, want=want):
                    # the lookup of the directory itself is a fixed cost, counted apart
                    mark = self.begin(t)
                    os.stat(t.mnt / sub)
                    lookup = self.end(t, mark, t.bucket, proxied(5))
                    lookup["wall_s"] = time.monotonic() - mark["t0"]
                    mark = self.begin(t)
                    r = subprocess.run(["ls", "-l", str(t.mnt / sub)], capture_output=True,
                                       text=True, timeout=cfg.phase_timeout,
                                       stdin=subprocess.DEVNULL)
                    wall = time.monotonic() - mark["t0"]
                    if r.returncode != 0:
                        raise BenchError(f"ls -l: {r.stderr.strip()[:150]}")
                    n = sum(1 for ln in r.stdout.splitlines() if not ln.startswith("total"))
                    res = self.end(t, mark, t.bucket, proxied(5))
                    self.record(t.name, row, wall_s=wall, entries=n, entries_s=n / wall,
                                dir_lookup=lookup, keys=self.count_keys(t.bucket, sub + "/"),
                                **res)
                    if n != want:
                        raise BenchError(f"ls -l listed {n} entries, want {want}")
                self.run_phase(t, [row], 5, proxied(5), True, p5)

        if 6 in P:
            def p6():
                path = t.mnt / "small" / "f0000"
                mark = self.begin(t)
                os.stat(path)
                prime = self.end(t, mark, t.bucket, proxied(6))
                mark = self.begin(t)
                for _ in range(cfg.stats):
                    os.stat(path)
                wall = time.monotonic() - mark["t0"]
                self.record(t.name, "6", wall_s=wall, us_per_stat=wall / cfg.stats * 1e6,
                            first_stat=prime, **self.end(t, mark, t.bucket, proxied(6)))
            self.run_phase(t, ["6"], 6, proxied(6), False, p6)

        if 7 in P:
            def p7():
                src, dst = t.mnt / "ren", t.mnt / "ren2"
                src.mkdir()
                for i in range(cfg.rename):
                    with open(src / f"f{i:03d}", "wb") as f:
                        f.write(b"r" * 4096)
                wait_until(lambda: self.count_keys(t.bucket, "ren/f") >= cfg.rename,
                           cfg.phase_timeout, "the files to rename in S3", 0.2)
                os.listdir(src)
                mark = self.begin(t)
                os.rename(src, dst)
                t_ret = time.monotonic() - mark["t0"]
                done = lambda: (self.count_keys(t.bucket, "ren2/f") == cfg.rename  # noqa: E731
                                and self.count_keys(t.bucket, "ren/") == 0)
                if not t.closes_durably:
                    wait_until(done, cfg.phase_timeout, "the rename in S3", 0.2)
                wall = time.monotonic() - mark["t0"]
                res = self.end(t, mark, t.bucket, proxied(7))
                ok = done()
                self.record(t.name, "7", wall_s=wall, return_s=t_ret, verified=ok, **res)
                if not ok:
                    raise BenchError("after the rename S3 does not hold exactly ren2/*")
            self.run_phase(t, ["7"], 7, proxied(7), False, p7)

        if 8 in P:
            def p8():
                mark = self.begin(t)
                out = self.work / f"fio-{t.name}.json"
                r = subprocess.run(
                    ["fio", "--name=randread", f"--filename={big}", "--rw=randread",
                     "--bs=4k", f"--size={cfg.size}", f"--runtime={cfg.fio_runtime}",
                     "--time_based", "--ioengine=psync", "--direct=0", "--invalidate=1",
                     "--readonly", "--output-format=json", f"--output={out}"],
                    capture_output=True, text=True, timeout=cfg.fio_runtime + 120,
                    stdin=subprocess.DEVNULL)
                wall = time.monotonic() - mark["t0"]
                if r.returncode != 0:
                    raise BenchError(f"fio: {(r.stderr or r.stdout).strip()[:150]}")
                job = json.loads(out.read_text())["jobs"][0]["read"]
                self.record(t.name, "8", wall_s=wall, iops=job["iops"],
                            lat_mean_us=job["lat_ns"]["mean"] / 1000,
                            read_mib=job["io_bytes"] / MIB,
                            **self.end(t, mark, t.bucket, proxied(8)))
            self.run_phase(t, ["8"], 8, proxied(8), True, p8)

        if 9 in P:
            def p9():
                key, path = "p9/obj.txt", t.mnt / "p9" / "obj.txt"
                v1, v2 = b"version 1 of the object\n", b"version 2 of the object\n"
                self.s3.put_object(Bucket=t.bucket, Key=key, Body=v1)
                t_v1 = time.monotonic()
                bound = 3 * cfg.stat_ttl + 30

                def content():
                    try:
                        return path.read_bytes()
                    except OSError:
                        return None
                wait_until(lambda: content() == v1, bound, "version 1 through the mount")
                # an overwrite in the same second as the first version has the same
                # Last-Modified (1 s resolution); real overwrites come later than that
                time.sleep(max(0.0, 1.1 - (time.monotonic() - t_v1)))
                mark = self.begin(t)
                self.s3.put_object(Bucket=t.bucket, Key=key, Body=v2)
                t0 = time.monotonic()
                polls = 0

                def seen():
                    nonlocal polls
                    polls += 1
                    return content() == v2
                wait_until(seen, bound, "version 2 through the mount", 0.05)
                wall = time.monotonic() - t0
                self.record(t.name, "9", wall_s=wall, polls=polls,
                            **self.end(t, mark, t.bucket, proxied(9)))
            self.run_phase(t, ["9"], 9, proxied(9), False, p9)

        if 10 in P:
            self.run_phase(t, ["10", "10b"], 10, proxied(10), False,
                           lambda: self.phase_nginx(t, proxied(10)))

        try:
            t.unmount()
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            self.notes.append(f"{t.name}: final unmount: {e}")
        rss = max(t.rss.values()) if t.rss else None
        self.results[(t.name, "rss")] = {"target": t.name, "row": "rss", "peak_rss": rss,
                                         "by_process": t.rss}

    # --- phases 1 and 2 again, paired with the raw ceiling (--pairs) ---

    def write_big(self, t: Target, name: str, t0: float) -> tuple[float, float]:
        """Phase 1's write of the source file to name in t's mount, 1 MiB at a time: the
        seconds from t0 until close returned, and until the object is in S3 (the same for a
        filesystem whose close means stored)."""
        fd = os.open(self.src, os.O_RDONLY)
        try:
            with open(t.mnt / name, "wb", buffering=0) as f:
                while True:
                    chunk = os.read(fd, MIB)
                    if not chunk:
                        break
                    f.write(chunk)
            t_close = time.monotonic() - t0
        finally:
            os.close(fd)
        if not t.closes_durably:
            wait_until(lambda: self._size_in_s3(t.bucket, name) == self.cfg.size,
                       self.cfg.phase_timeout, "the object in S3", 0.05)
        return t_close, time.monotonic() - t0

    def run_pairs(self, t: Target, n: int) -> None:
        """--pairs N: N times, a raw curl PUT and GET of the source (one each) right
        before phase 1's write through t (fresh mount) and phase 2's cold read of what it
        wrote: each pair's ratio is taken seconds apart, so the machine's drift between the
        two sides is as small as it can be on a shared machine. Their medians go into the
        targets, next to the single run's."""
        ratios = {"write": [], "read": []}
        try:
            for i in range(n):
                raw = self.raw_put_get(1, with_proxy=False)
                name = f"pair-{i}.bin"
                t.ensure(False, fresh=True)
                _, w = bounded(lambda: self.write_big(t, name, time.monotonic()),
                               self.cfg.phase_timeout, f"pair {i}: write")
                t.ensure(False, fresh=True)
                t0 = time.monotonic()
                got = bounded(lambda: read_file(t.mnt / name), self.cfg.phase_timeout,
                              f"pair {i}: read")
                r = time.monotonic() - t0
                if got != self.cfg.size:
                    raise BenchError(f"pair {i}: read {got} bytes, want {self.cfg.size}")
                ratios["write"].append(raw["put"][0] / w)
                ratios["read"].append(raw["get"][0] / r)
                log(f"{t.name} pair {i}: write {100 * ratios['write'][-1]:.0f}% of raw, "
                    f"read {100 * ratios['read'][-1]:.0f}% of raw")
                os.unlink(t.mnt / name)
        except BaseException as e:  # noqa: BLE001 — recorded, the run goes on
            if isinstance(e, KeyboardInterrupt):
                raise
            self.notes.append(f"{t.name} pairs: {e}")
        self.results[(t.name, "pairs")] = {"target": t.name, "row": "pairs", **ratios}

    # --- phase 10: nginx from the mount vs from local disk ---

    def nginx_wrk(self, root: Path, row: str, name: str, before_wrk=None) -> tuple[dict, object]:
        """Start nginx on root (the config of row: 10 plain, 10b with open_file_cache), warm
        and check the page (3 fetches, byte-exact), call before_wrk() (its value is returned),
        run wrk, stop nginx by its PID. Returns (wrk numbers, before_wrk's value)."""
        if shutil.which("nginx") is None and not os.access(nx.NGINX, os.X_OK):
            raise BenchError("nginx is not installed")
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed")
        n = nx.Nginx(root, self.work / "nginx" / name,
                     http_extra=NGINX_OPEN_FILE_CACHE if row == "10b" else "")
        self.nginxes.add(n)
        try:
            try:
                n.start()
            except nx.NginxError as e:
                raise BenchError(str(e).replace("\n", " ")[:200]) from e
            c = nx.HttpClient(n.port)
            try:
                for _ in range(3):
                    r = c.get(NGINX_PAGE)
                    if r.status != 200 or r.body != self.page:
                        raise BenchError(f"nginx on {name}: status {r.status}, "
                                         f"{len(r.body)} bytes, not the page")
            finally:
                c.close()
            ctx = before_wrk() if before_wrk else None
            return run_wrk(n.port, NGINX_PAGE, self.cfg.wrk_seconds, self.cfg.wrk_conns), ctx
        finally:
            n.stop()
            self.nginxes.discard(n)

    def phase_nginx(self, t: Target, via_proxy: bool) -> None:
        """Rows 10 and 10b: the page from a local directory, then from the mount (warmed by
        the checks), each with wrk -t1 -c16 for wrk_seconds; the ratio of the two."""
        for row in ("10", "10b"):
            local, _ = self.nginx_wrk(self.local_root, row, f"{t.name}-{row}-local")
            mnt, mark = self.nginx_wrk(t.mnt, row, f"{t.name}-{row}",
                                       before_wrk=lambda: self.begin(t))
            req = self.end(t, mark, t.bucket, via_proxy)
            self.record(t.name, row, rps=mnt["rps"], wrk=mnt, local=local,
                        local_rps=local["rps"], ratio=mnt["rps"] / local["rps"],
                        wall_s=mnt["seconds"], **req)

    def _size_in_s3(self, bucket: str, key: str) -> int | None:
        try:
            return self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except Exception:  # noqa: BLE001 — not there (yet)
            return None

    # --- the raw endpoint: curl ---

    def curl_batch(self, endpoint: str, specs: list[dict], name: str) -> tuple[float, list]:
        """One curl process, one keep-alive connection, the transfers in specs (each a dict
        of curl config options: url path, upload-file, head, range, header, request,
        output). Returns (seconds, [http codes])."""
        cfgf = self.work / f"curl-{name}.cfg"

        def q(v):
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines = []
        for i, s in enumerate(specs):
            if i:
                lines.append("next")
            lines += [f"url = {q(endpoint + s['path'])}",
                      'aws-sigv4 = "aws:amz:us-east-1:s3"',
                      f"user = {q(self.server.access_key + ':' + self.server.secret_key)}",
                      # curl 7.88 does not send it; RGW wants it for a SigV4 request
                      'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"',
                      f"output = {q(s.get('output', '/dev/null'))}",
                      'write-out = "%{http_code}\\n"', "silent", "show-error"]
            for h in s.get("headers", []):
                lines.append(f"header = {q(h)}")
            if "upload" in s:
                lines.append(f"upload-file = {q(s['upload'])}")
            if s.get("head"):
                lines.append("head")
            if "range" in s:
                lines.append(f"range = {q(s['range'])}")
            if "request" in s:
                lines.append(f"request = {q(s['request'])}")
        cfgf.write_text("\n".join(lines) + "\n")
        t0 = time.monotonic()
        r = subprocess.run(["curl", "-K", str(cfgf)], capture_output=True, text=True,
                           timeout=600, stdin=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        codes = r.stdout.split()
        bad = [c for c in codes if not c.startswith("2")]
        if len(codes) != len(specs) or bad:
            raise BenchError(f"curl {name}: codes {sorted(set(codes))[:5]}, "
                             f"{r.stderr.strip()[:150]}")
        return wall, codes

    def raw_put_get(self, reps: int, with_proxy: bool) -> dict[str, list[float]]:
        """PUT then GET (page cache dropped) of the big object with curl, reps times,
        alternating direct and (with_proxy) through the proxy: the seconds of each."""
        obj = f"/{self.raw_bucket}/big.bin"
        eps = {"": self.server.endpoint}
        if with_proxy:
            eps["_proxy"] = self.proxy.endpoint
        samples: dict[str, list[float]] = {}
        for _ in range(reps):
            for suffix, ep in eps.items():
                w, _ = self.curl_batch(ep, [{"path": obj, "upload": self.src}], "put")
                samples.setdefault("put" + suffix, []).append(w)
            for suffix, ep in eps.items():
                drop_caches()
                w, _ = self.curl_batch(ep, [{"path": obj}], "get")
                samples.setdefault("get" + suffix, []).append(w)
        return samples

    def run_raw(self) -> None:
        cfg, P = self.cfg, self.phases
        bucket = self.raw_bucket
        direct, proxy = self.server.endpoint, self.proxy.endpoint
        obj = f"/{bucket}/big.bin"

        def measured(row, fn, via_proxy, **kw):
            try:
                mark = self.begin(None)
                wall, extra = fn()
                req = self.end(None, mark, bucket, via_proxy)
                self.record("raw", row, wall_s=wall, **extra, **req, **kw)
            except BaseException as e:  # noqa: BLE001
                if isinstance(e, KeyboardInterrupt):
                    raise
                self.record("raw", row, error=str(e)[:200])

        if P & {1, 2, 3, 8}:
            try:
                samples = self.raw_put_get(cfg.raw_reps, with_proxy=True)
            except BenchError as e:
                self.record("raw", "1", error=str(e))
                return
            for key, row in (("put", "1"), ("get", "2")):
                d = statistics.median(samples[key])
                p = statistics.median(samples[key + "_proxy"])
                self.record("raw", row, wall_s=d, mib_s=cfg.size / MIB / d,
                            via_proxy_wall_s=p, via_proxy_mib_s=cfg.size / MIB / p,
                            samples_s=samples[key], samples_proxy_s=samples[key + "_proxy"],
                            requests={"put" if key == "put" else "get": 1, "total": 1},
                            counted_by="by construction")
        if 4 in P:
            small = self.work / "raw4k"
            small.write_bytes(b"s" * 4096)
            n = cfg.small
            measured("4", lambda: (lambda w: (w, {"files_s": n / w}))(self.curl_batch(
                proxy, [{"path": f"/{bucket}/small/f{i:04d}", "upload": small}
                        for i in range(n)], "small")[0]), True)
        if 5 in P:
            for row, prefix, want in (("5a", "small/", cfg.small), ("5b", "many/", cfg.many)):
                def listing(prefix=prefix, want=want):
                    t0 = time.monotonic()
                    after, n = "", 0
                    while True:
                        out = self.work / "list.xml"
                        # curl signs the query as given: encoded, parameters sorted
                        path = f"/{bucket}?list-type=2&prefix={quote(prefix, safe='')}" + \
                            (f"&start-after={quote(after, safe='')}" if after else "")
                        self.curl_batch(proxy, [{"path": path, "output": out}], "list")
                        xml = out.read_text()
                        ks = re.findall(r"<Key>([^<]*)</Key>", xml)
                        n += len(ks)
                        if "<IsTruncated>true</IsTruncated>" not in xml or not ks:
                            break
                        after = ks[-1]
                    w = time.monotonic() - t0
                    if n != want:
                        raise BenchError(f"listed {n} keys, want {want}")
                    return w, {"entries": n, "entries_s": n / w}
                measured(row, listing, True, note="curl per page (start-after)")
        if 6 in P:
            measured("6", lambda: (lambda w: (w, {"us_per_stat": w / cfg.stats * 1e6}))(
                self.curl_batch(proxy, [{"path": f"/{bucket}/small/f0000", "head": True}] *
                                cfg.stats, "head")[0]), True, note="HEADs on one connection")
        if 7 in P:
            small = self.work / "raw4k"
            small.write_bytes(b"s" * 4096)
            empty = self.work / "empty"
            empty.write_bytes(b"")

            def rename():
                specs = [{"path": f"/{bucket}/ren2/f{i:03d}", "upload": empty,
                          "headers": [f"x-amz-copy-source: /{bucket}/ren/f{i:03d}"]}
                         for i in range(cfg.rename)]
                specs += [{"path": f"/{bucket}/ren/f{i:03d}", "request": "DELETE"}
                          for i in range(cfg.rename)]
                return self.curl_batch(proxy, specs, "rename")[0], {}
            measured("7", rename, True, note="COPY + DELETE per key, one connection")
        if 10 in P:
            for row in ("10", "10b"):
                try:
                    w, _ = self.nginx_wrk(self.local_root, row, f"raw-{row}-local")
                    self.record("raw", row, rps=w["rps"], wrk=w, wall_s=w["seconds"],
                                requests=None, note="nginx on a local directory")
                except BenchError as e:
                    self.record("raw", row, error=str(e)[:200])
        if 8 in P:
            rnd = random.Random(8)
            blocks = cfg.size // 4096

            def ranged():
                specs = []
                for _ in range(cfg.raw_random):
                    off = rnd.randrange(blocks) * 4096
                    specs.append({"path": obj, "range": f"{off}-{off + 4095}"})
                w = self.curl_batch(direct, specs, "random")[0]
                return w, {"iops": cfg.raw_random / w}
            measured("8", ranged, False, note="ranged GETs on one connection")

    # --- driver ---

    def run(self) -> None:
        self.load_start = os.getloadavg()
        self.start_server()
        log(f"source file: {fmt_bytes(self.cfg.size)} of random bytes")
        self.make_source()
        classes = {"s3vfs": S3vfs, "s3fs": S3fs, "rclone": Rclone}
        targets = [classes[n](self) for n in self.targets if n != "raw"]
        self.prepare(targets)
        if "raw" in self.targets:
            log("raw endpoint (curl)")
            self.run_raw()
        for t in targets:
            self.run_one(t)
        if "raw" in self.targets and self.phases & {1, 2} and targets:
            # the ceiling again, to see how much the machine drifted during the run
            try:
                sm = self.raw_put_get(1, with_proxy=False)
                mibs = {k: self.cfg.size / MIB / v[0] for k, v in sm.items()}
                self.results[("raw", "end")] = {"target": "raw", "row": "end", **mibs}
                self.notes.append(f"raw curl again at the end of the run: PUT "
                                  f"{mibs['put']:.0f} MiB/s, GET {mibs['get']:.0f} MiB/s")
                before = [f"{r['row'][7:]}: PUT {r['put']:.0f}, GET {r['get']:.0f}"
                          for r in self.results.values() if r["row"].startswith("before-")]
                if before:
                    self.notes.append("raw curl right before each filesystem's phases "
                                      "(MiB/s): " + "; ".join(before))
            except BenchError as e:
                self.notes.append(f"raw curl at the end: {e}")

    def run_one(self, t: Target) -> None:
        """All phases of one filesystem; a failure is recorded, never raised."""
        name = t.name
        self.results[(name, "_settings")] = {"target": name, "row": "_settings",
                                             "argv": t.settings()}
        log(f"--- {name} (bucket {t.bucket}, log {t.log_path})")
        try:
            self.check_installed(t)
            if "raw" in self.targets and self.phases & {1, 2}:
                # the ceiling once more right before this filesystem's phases: on a shared
                # machine the load drifts, and the ratios are fairest against this one
                sm = self.raw_put_get(1, with_proxy=False)
                self.results[("raw", "before-" + name)] = {
                    "target": "raw", "row": "before-" + name,
                    **{k: self.cfg.size / MIB / v[0] for k, v in sm.items()}}
            self.run_target(t)
            if self.args.pairs and "raw" in self.targets:
                self.run_pairs(t, self.args.pairs)
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            log(f"{name}: {e}")
            for row, ph, _ in ROWS:
                if ph in self.phases and (name, row) not in self.results:
                    self.record(name, row, error=str(e)[:200])
        finally:
            t.kill()

    def check_installed(self, t: Target) -> None:
        prog = t.argv("x")[0]
        if not (os.access(prog, os.X_OK) or shutil.which(prog)):
            raise BenchError(f"{prog} is not installed or built")

    def cleanup(self) -> None:
        for n in list(self.nginxes):
            n.stop()
        for t in list(self.live):
            t.kill()
        if self.proxy:
            self.proxy.stop()
        if self.own_server_dir:
            log("stopping RGW")
            ls.stop_rgw(self.own_server_dir)
        elif self.server:
            for b in self.buckets:
                try:
                    ls.empty_and_delete_bucket(self.s3, b)
                except Exception as e:  # noqa: BLE001
                    log(f"could not delete bucket {b}: {e}")
        errors = any(r.get("error") for r in self.results.values())
        if self.args.keep or errors:
            for p in [self.src, *self.work.glob("*/cache"), *self.work.glob("rgw/osd"),
                      *self.work.glob("rgw/mon")]:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(
                    missing_ok=True)
            log(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # --- report ---

    def machine(self) -> dict:
        mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                    if ln.startswith("MemTotal:")), "0")
        cpu = next((ln.split(":", 1)[1].strip()
                    for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
        try:
            rev = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            rev = "?"
        return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(int(mem) / MIB, 1),
                "kernel": platform.release(), "os": _os_release(),
                "s3vfs": f"{rev} ({self.s3vfs_bin})",
                "s3fs": cmd_version(["s3fs", "--version"]),
                "rclone": cmd_version(["rclone", "version"]),
                "rgw": cmd_version(["radosgw", "--version"]),
                "fio": cmd_version(["fio", "--version"]),
                "curl": cmd_version(["curl", "--version"]),
                "nginx": cmd_version([nx.NGINX, "-v"]),
                "wrk": cmd_version(["wrk", "-v"]),
                "python": platform.python_version(),
                "drop_caches": os.access("/proc/sys/vm/drop_caches", os.W_OK),
                "loadavg_start": [round(x, 2) for x in getattr(self, "load_start", ())],
                "loadavg_end": [round(x, 2) for x in os.getloadavg()]}

    def report(self, machine: dict) -> str:
        cfg = self.cfg
        size = fmt_bytes(cfg.size)
        labels = {row: tmpl.format(size=size, small=f"{cfg.small:,}", many=f"{cfg.many:,}",
                                   stats=cfg.stats, rename=cfg.rename, wrk_conns=cfg.wrk_conns)
                  for row, _, tmpl in ROWS}
        rows = [(row, ph) for row, ph, _ in ROWS if ph in self.phases]
        cols = self.targets
        out = [f"## s3vfs benchmark — {time.strftime('%Y-%m-%d %H:%M %Z')}", ""]
        out.append(f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), "
                   f"{machine['mem_gib']} GiB RAM, Linux {machine['kernel']}, "
                   f"{machine['os']}. Server: {machine['rgw']} (single-node, loopback). "
                   f"s3fs: {machine['s3fs']}. rclone: {machine['rclone']}. "
                   f"s3vfs: {machine['s3vfs']}. {machine['fio']}, "
                   f"{' '.join(machine['curl'].split()[:2])}. Load average (1/5/15 min) "
                   f"at start {machine['loadavg_start']}, at end {machine['loadavg_end']}.")
        out.append("")
        out.append("### Wall time and throughput")
        out.append("")
        out.append("| phase | " + " | ".join(cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        for row, _ in rows:
            cells = [fmt_cell(self.results.get((c, row))) for c in cols]
            out.append(f"| {labels[row]} | " + " | ".join(cells) + " |")
        if self.phases & {1, 2, 3}:
            cells = []
            for c in cols:
                r = self.results.get((c, "rss"))
                cells.append(fmt_bytes(r["peak_rss"]) if r and r.get("peak_rss") else "—")
            out.append("| peak RSS, phases 1–3 (VmHWM) | " + " | ".join(cells) + " |")
        out.append("")
        out.append("### S3 requests (counted on the wire)")
        out.append("")
        out.append("| phase | " + " | ".join(cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        for row, _ in rows:
            if row == "3c":
                continue
            cells = [fmt_requests(self.results.get((c, row))) for c in cols]
            out.append(f"| {labels[row]} | " + " | ".join(cells) + " |")
        out.append("")
        out += self.targets_section()
        out.append("")
        out.append("### Settings")
        out.append("")
        for c in cols:
            s = self.results.get((c, "_settings"))
            if s:
                out.append(f"- {c}: `{s['argv'].replace(str(self.work), '$WORK')}`")
        if "raw" in cols:
            out.append("- raw: `curl --aws-sigv4 aws:amz:us-east-1:s3 --user KEY:SECRET "
                       "-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'`, one process and "
                       "connection per batch; PUT/GET medians of "
                       f"{cfg.raw_reps} runs each, direct and via the counting proxy")
        mode = ("every phase through the counting proxy" if self.args.proxy_all else
                "phases 1–3 and 8 direct to RGW (counted from rgw.log), the others through "
                "the counting proxy")
        out.append(f"- stat_ttl / stat_cache_expire / --dir-cache-time: {cfg.stat_ttl} s; "
                   f"{mode}; cold = unmount, empty cache dirs, drop_caches, mount")
        if 10 in self.phases:
            ngx = machine.get("nginx", "?").replace("nginx version: ", "")
            out.append(f"- phase 10: {ngx} as root, one worker, "
                       f"`sendfile on`, no access log; `wrk -t1 -c{cfg.wrk_conns} "
                       f"-d{cfg.wrk_seconds}s` on a {fmt_bytes(cfg.page_size)} page, first "
                       f"from a local directory ({self.args.workdir}), then from the mount "
                       f"(warmed: 3 fetches, checked byte for byte); 10b adds "
                       f"`{NGINX_OPEN_FILE_CACHE}`; the raw column is the local directory "
                       f"once more (measured before the filesystems' phases)")
        for n in self.notes:
            out.append(f"- note: {n}")
        return "\n".join(out) + "\n"

    def targets_section(self) -> list[str]:
        """Issue 4's targets for s3vfs, checked against this run."""
        R = self.results.get
        out = ["### Targets of issue 4 (s3vfs)", ""]

        def mib(t, row):
            r = R((t, row))
            return r.get("mib_s") if r and not r.get("error") else None

        def req(t, row):
            r = R((t, row))
            return (r or {}).get("requests") or None

        def line(ok, text):
            mark = "n/a" if ok is None else ("met" if ok else "**not met**")
            out.append(f"- {text}: {mark}")

        for row, what in (("2", "cold sequential read"), ("1", "sequential write")):
            s, raw = mib("s3vfs", row), mib("raw", row)
            near = (R(("raw", "before-s3vfs")) or {}).get("get" if row == "2" else "put")
            peers = {p: mib(p, row) for p in ("s3fs", "rclone") if p in self.targets}
            if s is None or raw is None:
                line(None, f"{what} ≥ 85% of raw")
            else:
                text = (f"{what} ≥ 85% of raw: {s:.0f} MiB/s = {100 * s / raw:.0f}% of "
                        f"{raw:.0f} MiB/s (raw at the start, median of {self.cfg.raw_reps})")
                if near:
                    text += (f", {100 * s / near:.0f}% of {near:.0f} MiB/s (raw right before "
                             f"s3vfs's phases)")
                line(s >= 0.85 * max(raw, near or 0), text)
            pairs = (R(("s3vfs", "pairs")) or {}).get("write" if row == "1" else "read")
            if pairs:
                med = statistics.median(pairs)
                line(med >= 0.85, f"{what} ≥ 85% of raw, paired (median of {len(pairs)} pairs "
                     f"of a raw curl right before the filesystem, --pairs): {100 * med:.0f}% "
                     f"(each: {', '.join(f'{100 * x:.0f}%' for x in pairs)})")
            if s is not None and peers:
                ahead = all(v is None or s > v for v in peers.values())
                line(ahead, f"{what} ahead of " + ", ".join(
                    f"{p} ({v:.0f} MiB/s)" if v else f"{p} (failed)" for p, v in peers.items()))
        for row, want_list in (("5a", 1), ("5b", -(-self.cfg.many // 1000))):
            q = req("s3vfs", row)
            keys = (R(("s3vfs", row)) or {}).get("keys")
            want_keys = self.cfg.small if row == "5a" else self.cfg.many
            if keys and keys > want_keys:
                out.append(f"- note ({row}): the prefix holds {keys:,} keys (the directory "
                           f"marker made by mkdir through the mount, and the files); RGW "
                           f"returns at most 1,000 per LIST")
            if q is None:
                line(None, f"cold ls -l ({row}): {want_list} LIST, 0 HEAD")
            else:
                line(q.get("list", 0) == want_list and q.get("head", 0) == 0,
                     f"cold ls -l ({row}): {want_list} LIST, 0 HEAD — measured "
                     f"{q.get('list', 0)} LIST, {q.get('head', 0)} HEAD, "
                     f"{q.get('total', 0)} requests in all")
        q = req("s3vfs", "6")
        line(None if q is None else q.get("total", 0) == 0,
             f"{self.cfg.stats} stats within stat_ttl: 0 requests"
             + ("" if q is None else f" — measured {q.get('total', 0)}"))
        q = req("s3vfs", "4")
        if q is None:
            line(None, f"{self.cfg.small} small files: {self.cfg.small} PUTs, nothing else")
        else:
            other = q.get("total", 0) - q.get("put", 0)
            line(q.get("put", 0) == self.cfg.small and other <= 2,
                 f"{self.cfg.small} small files: {self.cfg.small} PUTs, nothing else per file "
                 f"— measured {q.get('put', 0)} PUT + {other} other")
        r = R(("s3vfs", "rss"))
        if r and r.get("peak_rss"):
            line(r["peak_rss"] < 100 * MIB,
                 f"peak RSS < 100 MiB (phases 1–3, {fmt_bytes(self.cfg.size)} file): "
                 f"{fmt_bytes(r['peak_rss'])}")
        w, ref = mib("s3vfs", "3b"), mib("s3vfs", "3c")
        line(None if w is None or ref is None else w >= 0.8 * ref,
             "warm read from the disk cache ≥ 80% of reading the cache file"
             + ("" if w is None or ref is None else
                f": {w:.0f} vs {ref:.0f} MiB/s = {100 * w / ref:.0f}%"))
        for row, what in (("10", "nginx"),
                          ("10b", "nginx with open_file_cache (the configuration to "
                                  "deploy with: tests/bench/README.md)")):
            r = R(("s3vfs", row))
            if 10 not in self.phases:
                break
            if not r or r.get("error"):
                line(None, f"{what}, 10 KiB page from the mount ≥ 70% of local disk")
                continue
            line(r["ratio"] >= 0.70,
                 f"{what}, 10 KiB page from the mount (cached) ≥ 70% of local disk: "
                 f"{r['rps']:,.0f} req/s = {100 * r['ratio']:.0f}% of {r['local_rps']:,.0f} "
                 f"req/s (measured right before)")
        both = [r for r in self.results.values() if r["target"] == "s3vfs"
                and r.get("s3vfs_stats") and r.get("requests") is not None]
        same = [r["row"] for r in both]
        differ = [r["row"] for r in both
                  if {k: v for k, v in r["requests"].items() if v} !=
                  {k: v for k, v in r["s3vfs_stats"]["requests"].items() if v}]
        if same:
            out.append(f"- s3vfs's stats xattr and the wire counts agree in "
                       f"{len(same) - len(differ)} of {len(same)} phases"
                       + (f" (they differ in {', '.join(differ)}: see the JSON)" if differ
                          else ""))
        return out

    def json_doc(self, machine: dict) -> dict:
        return {"machine": machine, "config": self.cfg.as_dict(),
                "phases": sorted(self.phases), "targets": self.targets,
                "proxy_all": self.args.proxy_all,
                "results": [r for r in self.results.values()], "notes": self.notes}


def _os_release() -> str:
    try:
        for ln in Path("/etc/os-release").read_text().splitlines():
            if ln.startswith("PRETTY_NAME="):
                return ln.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def fmt_cell(r: dict | None) -> str:
    if r is None:
        return "—"
    if r.get("error"):
        return "ERROR: " + r["error"].replace("|", "/")[:90]
    if r.get("na"):
        return f"n/a ({r['na']})"
    parts = [fmt_s(r["wall_s"])] if "wall_s" in r else []
    if "mib_s" in r:
        parts.append(f"{r['mib_s']:.0f} MiB/s")
    if "via_proxy_mib_s" in r:
        parts.append(f"(via proxy {r['via_proxy_mib_s']:.0f} MiB/s)")
    if "files_s" in r:
        parts.append(f"{r['files_s']:.0f} files/s")
    if "entries_s" in r:
        parts.append(f"{r['entries']} entries")
    if "us_per_stat" in r:
        parts.append(f"{r['us_per_stat']:.0f} µs/stat")
    if "iops" in r:
        parts.append(f"{r['iops']:.0f} IOPS")
    if "rps" in r:
        parts = [f"{r['rps']:,.0f} req/s"]
        if r.get("ratio") is not None:
            parts.append(f"{100 * r['ratio']:.0f}% of local disk ({r['local_rps']:,.0f} req/s)")
        if r.get("wrk", {}).get("latency_ms") is not None:
            parts.append(f"{r['wrk']['latency_ms']:.2f} ms avg")
    if r.get("row") == "9":
        parts = [f"seen after {fmt_s(r['wall_s'])}"]
    if r.get("extents"):
        parts.append(f"({r['extents']:,} extents)")
    if r.get("close_s") is not None and abs(r["close_s"] - r["wall_s"]) > 0.05:
        parts.append(f"(close after {fmt_s(r['close_s'])})")
    if r.get("return_s") is not None and abs(r["return_s"] - r["wall_s"]) > 0.05:
        parts.append(f"(rename returned after {fmt_s(r['return_s'])})")
    return " · ".join(parts)


def fmt_requests(r: dict | None) -> str:
    if r is None:
        return "—"
    if r.get("error") and not r.get("requests"):
        return "error"
    q = r.get("requests")
    if q is None:
        return "n/a"
    ops = [f"{OP_SHORT.get(op, op)} {q[op]}" for op in OP_ORDER if q.get(op)]
    ops += [f"{op} {v}" for op, v in q.items() if op not in OP_ORDER and op != "total" and v]
    text = ", ".join(ops) if ops else "0"
    lk = r.get("dir_lookup")
    if lk and lk.get("requests") is not None:
        text += f" (+ lookup of the dir: {fmt_requests(lk)})"
    if r.get("bytes_down", 0) >= MIB and r.get("row") in ("8", "2", "3", "3b"):
        text += f" ({fmt_bytes(r['bytes_down'])} down)"
    return text


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=None,
                    help="size of the big file (default 256; 16 with --quick)")
    ap.add_argument("--only", default=",".join(TARGETS),
                    help="comma-separated subset of raw,s3vfs,s3fs,rclone (default all)")
    ap.add_argument("--phases", default=",".join(map(str, DEFAULT_PHASES)),
                    help="comma-separated phase numbers 1-10, or 'all' (default 1-9; phase 10, "
                    "nginx, is opt-in)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run (16 MiB, 50 files, 500 objects)")
    ap.add_argument("--json", type=Path, help="write the results as JSON to this file")
    ap.add_argument("--markdown", type=Path, help="also write the report to this file")
    ap.add_argument("--stat-ttl", type=int, default=None,
                    help="metadata TTL in seconds given to all three (default 10; 2 with "
                    "--quick)")
    ap.add_argument("--proxy-all", action="store_true",
                    help="run the throughput phases through the counting proxy too")
    ap.add_argument("--build-dir", help="meson build dir (default $S3VFS_BUILD or build/)")
    ap.add_argument("--workdir", default="/tmp",
                    help="where the temporary directory goes (on disk: RGW needs O_DIRECT)")
    ap.add_argument("--keep", action="store_true", help="keep the logs in the work dir")
    ap.add_argument("--pairs", type=int, default=0, metavar="N",
                    help="after each filesystem's phases, N pairs of (raw PUT+GET, write and "
                    "cold read through the mount): the median ratio goes into the targets")
    ap.add_argument("--s3vfs-opts", default="", help="extra -o options for s3vfs")
    ap.add_argument("--s3fs-opts", default="", help="extra -o options for s3fs")
    ap.add_argument("--rclone-opts", default="", help="extra arguments for rclone mount")
    args = ap.parse_args(argv)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    bad = [t for t in args.only if t not in TARGETS]
    if bad:
        ap.error(f"--only: unknown {', '.join(bad)} (choose from {', '.join(TARGETS)})")
    if args.phases.strip() == "all":
        args.phases = ",".join(map(str, ALL_PHASES))
    try:
        args.phases = sorted({int(p) for p in args.phases.split(",") if p.strip()})
    except ValueError:
        ap.error("--phases: comma-separated numbers 1-10")
    if not args.phases or any(p not in ALL_PHASES for p in args.phases):
        ap.error("--phases: numbers 1-10")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        bench.notes.append("interrupted")
        return 130
    except ls.ServerError as e:
        log(str(e))
        return 2
    finally:
        bench.cleanup()
        left = [t.name for t in bench.live]
        if left:
            log(f"still mounted: {left}")
    machine = bench.machine()
    text = bench.report(machine)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(bench.json_doc(machine), indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
