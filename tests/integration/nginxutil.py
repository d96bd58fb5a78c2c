# SPDX-License-Identifier: MIT
"""Helpers for the content-chain and nginx tests (test_chain_content.py, test_nginx.py) and
the benchmark's nginx phase (tests/bench/bench.py).

nginx
  Nginx(root, workdir, ...)   Debian's nginx as root in the foreground (daemon off, one
                              worker unless workers=) with a generated config in workdir,
                              http_extra= directives in its http block, on a free loopback
                              port: .start() (bounded: fails at once if nginx exits, the
                              error log in the message), .url(path), .stop() (SIGTERM to the
                              master by its PID, then SIGKILL; its worker PIDs, recorded at
                              start, are killed too if they outlive it). Never stops an nginx
                              it did not start; nginxes still running at exit are stopped.
  HttpClient(port)            one keep-alive HTTP/1.1 connection (http.client), reconnecting
                              after an error: .get(path) -> Response(status, headers, body).
  nginx_conf(...)             the config text.

Content chains (setfattr user.s3vfs.chain=content DIR; see test_chain_content.py)
  mark_content(d), head(d) -> {"version": N, "id": ...}, txn(d, "begin"|"commit"|"abort"),
  txn_state(d) -> "open N" | None, rollback(d, v), requests(m), delta(m, before),
  tree(d) -> {relpath: bytes} (files only), write(path, data), wait_until(cond, timeout, what)

Every wait is bounded; no function asserts a time.
"""
from __future__ import annotations

import atexit
import errno
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

# what tests/bench/README.md recommends for serving from s3vfs
OPEN_FILE_CACHE = "open_file_cache max=1000 inactive=20s; open_file_cache_valid 1s;"

CHAIN = "user.s3vfs.chain"
TXN = "user.s3vfs.txn"
ROLLBACK = "user.s3vfs.rollback"


class NginxError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_conf(root: os.PathLike | str, port: int, workdir: os.PathLike | str,
               http_extra: str = "", workers: int = 1) -> str:
    """The config: `workers` workers (1) as root, no access log, sendfile, `root` the
    directory served. http_extra goes into the http block (e.g. open_file_cache directives)."""
    w = Path(workdir)
    return f"""daemon off;
master_process on;
worker_processes {workers};
user root;
error_log {w}/error.log;
pid {w}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    log_not_found off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path {w}/tmp-body;
    proxy_temp_path {w}/tmp-proxy;
    fastcgi_temp_path {w}/tmp-fastcgi;
    uwsgi_temp_path {w}/tmp-uwsgi;
    scgi_temp_path {w}/tmp-scgi;
    {http_extra}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


_LIVE: set["Nginx"] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for n in live:
        n.stop()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


class Nginx:
    """One nginx (master + `workers` workers) serving root on 127.0.0.1:port."""

    def __init__(self, root: os.PathLike | str, workdir: os.PathLike | str,
                 http_extra: str = "", port: int | None = None, workers: int = 1):
        self.root = Path(root)
        self.workdir = Path(workdir)
        self.http_extra = http_extra
        self.workers_wanted = workers
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.workers: list[int] = []

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def log_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> "Nginx":
        assert self.proc is None
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_conf(self.root, self.port, self.workdir, self.http_extra,
                                   self.workers_wanted))
        out = open(self.workdir / "nginx.out", "ab")
        try:
            # -e: the error log before the config is read (else /var/log/nginx/error.log)
            self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.workdir),
                                          "-e", str(self.error_log)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)
        finally:
            out.close()
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                with _LIVE_LOCK:
                    _LIVE.discard(self)
                raise NginxError(f"nginx exited with {rc} at start:\n{self.log_text()[-2000:]}"
                                 f"\n{(self.workdir / 'nginx.out').read_text()[-1000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                kids = _children(self.proc.pid)
                if len(kids) >= self.workers_wanted:
                    self.workers = kids
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError(f"nginx did not answer on port {self.port} within "
                                 f"{START_TIMEOUT:.0f}s:\n{self.log_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM to the master (fast shutdown), then SIGKILL; then the workers recorded at
        start, by PID, if any outlived the master. Bounded; never raises."""
        p = self.proc
        if p is None:
            return
        self.workers = sorted(set(self.workers) | set(_children(p.pid)))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if p.poll() is not None:
                break
            try:
                p.send_signal(sig)
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                continue
            except OSError:
                break
        deadline = time.monotonic() + STOP_TIMEOUT
        for w in self.workers:
            while _alive(w) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(w):
                try:
                    os.kill(w, signal.SIGKILL)
                except OSError:
                    pass
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _pdeathsig() -> None:  # in the child: nginx's master dies with its parent
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpClient:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict | None = None) -> Response:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request("GET", "/" + path.lstrip("/"), headers=headers or {})
                r = self.conn.getresponse()
                body = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return Response(r.status, hdrs, body)
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- content chains --------------------------------------------------------------------------

def mark_content(d: os.PathLike | str) -> None:
    os.setxattr(d, CHAIN, b"content")


def head(d: os.PathLike | str) -> dict:
    with open(os.path.join(d, ".head"), "rb") as f:
        return json.loads(f.read())


def txn(d: os.PathLike | str, op: str) -> None:
    os.setxattr(d, TXN, op.encode())


def txn_state(d: os.PathLike | str) -> str | None:
    try:
        return os.getxattr(d, TXN).decode()
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def rollback(d: os.PathLike | str, version: int | str) -> None:
    os.setxattr(d, ROLLBACK, str(version).encode())


def requests(m) -> dict[str, int]:
    return dict(m.stats()["requests"])


def delta(m, before: dict[str, int]) -> dict[str, int]:
    """The nonzero differences of m's request counters since before (requests(m))."""
    after = requests(m)
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def write(path: os.PathLike | str, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def tree(d: os.PathLike | str) -> dict[str, bytes]:
    """Every file under d (os.walk; hidden entries that are listed included) by relative
    path."""
    out = {}
    base = Path(d)
    for root, _dirs, files in os.walk(base):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(base))] = p.read_bytes()
    return out


def wait_until(cond, timeout: float, what: str, interval: float = 0.1):
    """cond() until truthy; AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.1f}s")
        time.sleep(interval)
