# SPDX-License-Identifier: MIT
"""A fault-injecting HTTP/1.1 proxy for S3, between a mount and RGW (127.0.0.1:port).

Each client connection gets its own thread and its own upstream connection (keep-alive on both
sides). Every request is classified into an S3 operation (see s3_op()), then the first rule
that matches it (operation, key substring, and how many more times it may fire) decides what
happens to it; with no rule it is forwarded and its response streamed back.

    p = HttpFaultProxy(rgw.host, rgw.port)
    p.add("status", ops="get", times=2, status=503, code="SlowDown")  # two 503 SlowDown
    p.add("reset", ops="get", times=1)            # forward, send half the body, then RST
    p.add("truncate", ops="get", times=1)         # full Content-Length, half the body, FIN
    p.add("reset_request", ops="put", times=1)    # RST while reading the request's body
    p.add("stall", ops="head", times=1, seconds=40)   # no answer for 40 s, then close
    p.add("drop", ops="put", times=1)             # forwarded (the server applies it), the
                                                  # response is never sent: a lost response
    p.add("delay", ops="part", seconds=2)         # forwarded, answered 2 s late (times=None:
                                                  # for ever, until remove()/clear())
    p.add("corrupt", ops="part", times=1)         # forwarded with a byte of its body flipped
    p.refuse()  ... p.accept()                    # connections refused (the port is closed)
    p.fired(rule), p.count("get"), p.exchanges, p.close()

Actions: status, reset, reset_request, truncate, stall, drop, delay, corrupt. Each exchange
records its operation, the action taken, the status and whether it carried Content-MD5. Nothing here knows about
s3vfs; tests/integration/faultproxy.py is the DynamoDB one (X-Amz-Target operations).
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD = 256 * 1024
CHUNK = 256 * 1024

ACTIONS = ("status", "reset", "reset_request", "truncate", "stall", "drop", "delay", "corrupt")

S3_OPS = ("bucket", "list", "mpu_list", "head", "get", "put", "copy", "part", "part_copy",
          "mpu_create", "mpu_complete", "mpu_abort", "delete", "delete_multi", "other")
WRITE_OPS = ("put", "copy", "part", "part_copy", "mpu_create", "mpu_complete", "delete",
             "delete_multi")


class _Closed(Exception):
    pass


@dataclass
class Request:
    method: str
    target: str               # as sent: /bucket/key?query
    path: str                 # decoded path without the query
    query: dict
    headers: dict             # lower-case names
    op: str
    key: str                  # decoded object key ("" for bucket operations)


@dataclass
class Rule:
    action: str
    ops: tuple                # S3 operations it applies to (empty: any)
    key: str | None           # substring the key must contain (None: any)
    times: int | None         # how many more times it fires (None: for ever)
    status: int = 503
    code: str = "SlowDown"
    seconds: float = 0.0
    fraction: float = 0.5     # reset/truncate: the part of the body sent first
    target: str | None = None  # substring the request target (path?query) must contain
    fired: int = 0

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.ops and req.op not in self.ops:
            return False
        if self.target is not None and self.target not in req.target:
            return False
        return self.key is None or self.key in req.key


@dataclass
class Exchange:
    op: str
    method: str
    key: str
    action: str = "forward"
    status: int = 0
    done: bool = False        # the server's whole response was read (or it was never sent)
    md5: bool = False         # the request carried Content-MD5
    t: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:
        return f"<{self.op} {self.key!r} {self.action} {self.status}>"


def s3_op(method: str, key: str, query: dict, headers: dict) -> str:
    """The S3 operation of a path-style request."""
    copy = "x-amz-copy-source" in headers
    if method == "HEAD":
        return "head" if key else "bucket"
    if method == "GET":
        if key:
            return "get"
        if "uploads" in query:
            return "mpu_list"
        return "list" if "list-type" in query or "prefix" in query or not query else "other"
    if method == "PUT":
        if not key:
            return "bucket"
        if "uploadId" in query:
            return "part_copy" if copy else "part"
        return "copy" if copy else "put"
    if method == "POST":
        if "uploads" in query:
            return "mpu_create"
        if "uploadId" in query:
            return "mpu_complete"
        if "delete" in query:
            return "delete_multi"
        return "other"
    if method == "DELETE":
        if "uploadId" in query:
            return "mpu_abort"
        return "delete" if key else "bucket"
    return "other"


def s3_error_body(code: str, message: str = "injected by the test proxy",
                  request_id: str = "fault") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>").encode()


# --- wire helpers ------------------------------------------------------------------------------

def _read_head(rf) -> bytes:
    lines, size = [], 0
    while True:
        line = rf.readline(MAX_HEAD + 1)
        if not line:
            raise _Closed("EOF inside a message head" if lines else "EOF")
        size += len(line)
        if size > MAX_HEAD:
            raise _Closed("message head too long")
        if not lines and line in (b"\r\n", b"\n"):
            continue
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _parse_head(head: bytes) -> tuple[str, dict]:
    text = head.decode("iso-8859-1")
    first, *rest = text.split("\r\n")
    hdrs: dict[str, str] = {}
    for ln in rest:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return first, hdrs


def _read_exact(rf, n: int) -> bytes:
    data = rf.read(n)
    if data is None or len(data) != n:
        raise _Closed(f"EOF inside a body ({len(data or b'')} of {n} bytes)")
    return data


def _read_chunked_raw(rf) -> bytes:
    raw = []
    while True:
        line = rf.readline(1024)
        if not line:
            raise _Closed("EOF inside a chunked body")
        raw.append(line)
        n = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if n == 0:
            while True:
                t = rf.readline(MAX_HEAD)
                if not t:
                    raise _Closed("EOF inside chunked trailers")
                raw.append(t)
                if t in (b"\r\n", b"\n"):
                    return b"".join(raw)
        raw.append(_read_exact(rf, n + 2))


def _rst(s: socket.socket | None, wake: bool = False) -> None:
    """Close with a TCP reset (SO_LINGER 0). wake: shut it down first, so that another
    thread blocked in recv() on it returns (the peer may then see a FIN before the RST)."""
    if s is None:
        return
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    if wake:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        s.close()
    except OSError:
        pass


def _fin(s: socket.socket | None) -> None:
    if s is None:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class HttpFaultProxy:
    """127.0.0.1:port forwarding HTTP/1.1 to (host, port), with fault rules per S3 operation."""

    def __init__(self, host: str, port: int, upstream_timeout: float = 120.0,
                 ssl_context=None):
        """ssl_context (an ssl.SSLContext for the server side): clients speak TLS to the
        proxy (https://127.0.0.1:port), the proxy plain HTTP to the server. .tls_errors
        counts handshakes that failed (a client that refused the certificate)."""
        self.target = (host, port)
        self.upstream_timeout = upstream_timeout
        self.ssl_context = ssl_context
        self.tls_errors = 0
        self.lsock = self._listen(0)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        self.counts: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()   # faults injected, by action
        self.exchanges: list[Exchange] = []
        self.errors: list[str] = []
        self.refused_since: float | None = None
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._stop = threading.Event()
        self._gen = 0                            # clear() releases stalls of older ones
        self._thread = self._start_accept()

    # --- rules ---------------------------------------------------------------------------

    def add(self, action: str, ops=(), key: str | None = None, times: int | None = 1,
            **kw) -> Rule:
        assert action in ACTIONS, action
        if isinstance(ops, str):
            ops = (ops,)
        for o in ops:
            assert o in S3_OPS, o
        r = Rule(action, tuple(ops), key, times, **kw)
        with self._lock:
            self._rules.append(r)
        return r

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Drop every rule; stalled connections are let go at once (closed)."""
        with self._lock:
            self._rules.clear()
            self._gen += 1

    def count(self, *ops: str) -> int:
        with self._lock:
            return sum(self.counts[o] for o in ops)

    def injected(self) -> int:
        with self._lock:
            return sum(self.actions.values())

    def _match(self, req: Request) -> Rule | None:
        with self._lock:
            for r in self._rules:
                if r.matches(req):
                    if r.times is not None:
                        r.times -= 1
                    r.fired += 1
                    self.actions[r.action] += 1
                    return r
        return None

    # --- refusing connections ------------------------------------------------------------

    def refuse(self) -> None:
        """Close the listening port (connects get ECONNREFUSED) and reset open connections."""
        with self._lock:
            if self.refused_since is not None:
                return
            self.refused_since = time.monotonic()
            ls, self.lsock = self.lsock, None
            socks, self._socks = list(self._socks), set()
        _fin(ls)
        self._thread.join(5)
        for s in socks:
            _rst(s, wake=True)

    def accept(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            if self.refused_since is None:
                return
        deadline = time.monotonic() + 10
        while True:
            try:
                ls = self._listen(self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with self._lock:
            self.lsock = ls
            self.refused_since = None
        self._thread = self._start_accept()

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _listen(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        s.settimeout(0.1)
        return s

    def _start_accept(self) -> threading.Thread:
        t = threading.Thread(target=self._accept_loop, args=(self.lsock,), daemon=True,
                             name="httpfault-accept")
        t.start()
        return t

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _untrack(self, s: socket.socket | None) -> None:
        if s is None:
            return
        with self._lock:
            self._socks.discard(s)

    def _accept_loop(self, ls: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.lsock is not ls:  # refused meanwhile
                _rst(c)
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True,
                             name="httpfault-conn").start()

    def _connect(self):
        u = socket.create_connection(self.target, timeout=5)
        u.settimeout(self.upstream_timeout)
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(u)
        return u, u.makefile("rb")

    def _reply(self, c: socket.socket, req: Request, status: int, code: str) -> None:
        body = b"" if req.method == "HEAD" else s3_error_body(code)
        reason = {500: "Internal Server Error", 503: "Slow Down", 429: "Too Many Requests",
                  400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(status, "Error")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body) if req.method != 'HEAD' else len(s3_error_body(code))}"
                f"\r\nx-amz-request-id: fault\r\n\r\n").encode()
        c.sendall(head + body)

    def _stall(self, seconds: float) -> None:
        gen = self._gen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and gen == self._gen and \
                not self._stop.wait(0.05):
            pass

    def _serve(self, c: socket.socket) -> None:
        u = urf = None
        if self.ssl_context is not None:
            try:
                c.settimeout(10)
                tc = self.ssl_context.wrap_socket(c, server_side=True)
                tc.settimeout(None)
            except OSError:  # ssl.SSLError is one
                with self._lock:
                    self.tls_errors += 1
                self._untrack(c)
                _fin(c)
                return
            self._untrack(c)
            self._track(tc)
            c = tc
        crf = c.makefile("rb")
        try:
            while not self._stop.is_set():
                try:
                    head = _read_head(crf)
                except (_Closed, OSError):
                    return
                first, hdrs = _parse_head(head)
                parts = first.split(" ")
                if len(parts) < 2:
                    return
                method, target = parts[0], parts[1]
                sp = urlsplit(target)
                path = unquote(sp.path)
                segs = path.lstrip("/").split("/", 1)
                key = segs[1] if len(segs) > 1 else ""
                query = parse_qs(sp.query, keep_blank_values=True)
                req = Request(method, target, path, query, hdrs,
                              s3_op(method, key, query, hdrs), key)
                ex = Exchange(req.op, method, key, md5="content-md5" in hdrs)
                with self._lock:
                    self.counts[req.op] += 1
                    self.exchanges.append(ex)
                rule = self._match(req)
                ex.action = rule.action if rule else "forward"
                clen = int(hdrs.get("content-length", "0") or 0)
                chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
                if rule and rule.action == "reset_request":
                    try:
                        if clen:
                            crf.read(max(1, int(clen * rule.fraction)))
                    except OSError:
                        pass
                    _rst(c)
                    return
                try:
                    if chunked:
                        raw_body = _read_chunked_raw(crf)
                    else:
                        raw_body = _read_exact(crf, clen) if clen else b""
                except (_Closed, OSError):
                    return
                if rule and rule.action == "corrupt" and raw_body and not chunked:
                    mid = len(raw_body) // 2
                    raw_body = raw_body[:mid] + bytes([raw_body[mid] ^ 0x20]) + \
                        raw_body[mid + 1:]
                if rule and rule.action == "status":
                    ex.status, ex.done = rule.status, True
                    self._reply(c, req, rule.status, rule.code)
                    continue
                if rule and rule.action == "stall":
                    ex.done = True
                    self._stall(rule.seconds)
                    _fin(c)
                    return
                # forward, with one reconnect if a kept-alive upstream connection was closed
                rhead = None
                for attempt in range(2):
                    try:
                        if u is None:
                            u, urf = self._connect()
                        u.sendall(head + raw_body)
                        rhead = _read_head(urf)
                        break
                    except (_Closed, OSError) as e:
                        self._untrack(u)
                        _fin(u)
                        u = urf = None
                        if attempt == 1:
                            self.errors.append(f"{req.op} {key}: upstream failed: {e}")
                if rhead is None:
                    ex.done = True
                    _rst(c)
                    return
                status_line, rhdrs = _parse_head(rhead)
                status = int(status_line.split(" ")[1])
                ex.status = status
                no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
                rchunked = "chunked" in rhdrs.get("transfer-encoding", "").lower()
                rlen = None if rchunked or no_body else rhdrs.get("content-length")
                close_after = "close" in rhdrs.get("connection", "").lower()
                action = rule.action if rule else "forward"
                if action in ("drop", "delay", "truncate", "reset") or rlen is None:
                    # whole response first
                    try:
                        if no_body:
                            rbody = b""
                        elif rchunked:
                            rbody = _read_chunked_raw(urf)
                        elif rlen is not None:
                            rbody = _read_exact(urf, int(rlen))
                        else:
                            rbody = urf.read()
                            close_after = True
                    except (_Closed, OSError) as e:
                        self.errors.append(f"{req.op} {key}: upstream body: {e}")
                        ex.done = True
                        _rst(c)
                        return
                    ex.done = True
                    if action == "drop":
                        _fin(c)   # the server applied it; the client never hears
                        return
                    if action == "delay":
                        self._stall(rule.seconds)
                    if action in ("truncate", "reset"):
                        cut = int(len(rbody) * rule.fraction)
                        try:
                            c.sendall(rhead + rbody[:cut])
                        except OSError:
                            pass
                        if action == "truncate":
                            _fin(c)
                        else:
                            time.sleep(0.05)  # let the bytes sent arrive before the RST
                            _rst(c)
                        return
                    c.sendall(rhead + rbody)
                    if close_after:
                        return
                    continue
                # pass-through with a Content-Length: stream
                c.sendall(rhead)
                left = int(rlen)
                while left > 0:
                    b = urf.read1(min(CHUNK, left)) if hasattr(urf, "read1") \
                        else urf.read(min(CHUNK, left))
                    if not b:
                        self.errors.append(f"{req.op} {key}: upstream EOF mid-body")
                        _rst(c)
                        return
                    c.sendall(b)
                    left -= len(b)
                ex.done = True
                if close_after or "close" in hdrs.get("connection", "").lower():
                    return
        except OSError:
            return
        finally:
            self._untrack(c)
            _fin(c)
            if u is not None:
                self._untrack(u)
                _fin(u)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            ls, self.lsock = self.lsock, None
            socks, self._socks = list(self._socks), set()
        _fin(ls)
        self._thread.join(5)
        for s in socks:
            _rst(s, wake=True)
