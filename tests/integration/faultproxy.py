# SPDX-License-Identifier: MIT
"""A fault-injecting HTTP/1.1 proxy for the tests: 127.0.0.1:port in front of one server.

Made for DynamoDB (JSON over POST, the operation in the X-Amz-Target header), it works for any
HTTP/1.1 server that answers with Content-Length or chunked bodies. Each client connection gets
its own thread and its own upstream connection (keep-alive on both sides). Every request is
read whole, forwarded, and its response read whole before anything is sent back, so that a
rule can decide on the response: drop_response() makes the proxy close the client's connection
WITHOUT sending a response that the server did send, which is the "lost response" of a
request that DID take effect (the client sees an empty reply and cannot tell).

    p = FaultProxy("127.0.0.1", ddb_port)
    p.drop_response("UpdateItem", status=200, times=1)
    ... point the client at p.endpoint ...
    p.counts["UpdateItem"], p.dropped, p.exchanges (what went through, in order)
    p.close()

Nothing here knows about s3vfs.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

MAX_HEAD = 256 * 1024  # request or response head (start line + headers)


@dataclass
class Exchange:
    """One request and what became of it."""
    op: str                 # the X-Amz-Target suffix ("UpdateItem"), or "METHOD /path"
    request_body: bytes
    status: int = 0         # the server's status; 0 if none was read (upstream failure)
    response_body: bytes = b""
    dropped: bool = False   # the client never got the response
    t: float = field(default_factory=time.monotonic)

    def json(self) -> dict:
        """The request body as JSON ({} if it is not)."""
        try:
            return json.loads(self.request_body or b"{}")
        except ValueError:
            return {}

    def __repr__(self) -> str:
        extra = " DROPPED" if self.dropped else ""
        err = ""
        if self.status >= 400:
            try:
                err = " " + json.loads(self.response_body).get("__type", "").rsplit("#", 1)[-1]
            except (ValueError, AttributeError):
                pass
        return f"<{self.op} {self.status}{err}{extra}>"


@dataclass
class Rule:
    op: str                 # X-Amz-Target suffix to match (".UpdateItem" or "UpdateItem")
    status: int | None      # the response status that must match; None: any
    times: int              # how many more times it fires
    fired: int = 0
    on_drop: object = None  # called with the Exchange before the connection is closed


class _Closed(Exception):
    pass


def _read_head(rf) -> bytes:
    """Start line and headers up to and including the blank line; _Closed at EOF first."""
    lines = []
    size = 0
    while True:
        line = rf.readline(MAX_HEAD + 1)
        if not line:
            if lines:
                raise _Closed("EOF inside a message head")
            raise _Closed("EOF")
        size += len(line)
        if size > MAX_HEAD:
            raise _Closed("message head too long")
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerated stray CRLF between messages
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
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


def _read_chunked(rf) -> tuple[bytes, bytes]:
    """(the raw chunked encoding as received, the decoded body)."""
    raw, body = [], []
    while True:
        line = rf.readline(1024)
        if not line:
            raise _Closed("EOF inside a chunked body")
        raw.append(line)
        n = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if n == 0:
            while True:  # trailers, then the blank line
                t = rf.readline(MAX_HEAD)
                if not t:
                    raise _Closed("EOF inside chunked trailers")
                raw.append(t)
                if t in (b"\r\n", b"\n"):
                    return b"".join(raw), b"".join(body)
        chunk = _read_exact(rf, n + 2)
        raw.append(chunk)
        body.append(chunk[:n])


def _read_body(rf, hdrs: dict[str, str], is_response: bool, status: int = 0,
               method: str = "") -> tuple[bytes, bytes, bool]:
    """(raw body bytes to forward, decoded body, read to EOF i.e. the connection ends)."""
    if is_response and (100 <= status < 200 or status in (204, 304) or method == "HEAD"):
        return b"", b"", False
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        raw, body = _read_chunked(rf)
        return raw, body, False
    if "content-length" in hdrs:
        data = _read_exact(rf, int(hdrs["content-length"]))
        return data, data, False
    if not is_response:
        return b"", b"", False
    data = rf.read()  # no length: the body ends with the connection
    return data, data, True


def _close(s: socket.socket | None) -> None:
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


class FaultProxy:
    """127.0.0.1:port forwarding HTTP/1.1 to (host, port), with response-dropping rules."""

    def __init__(self, host: str, port: int, upstream_timeout: float = 60.0):
        self.target = (host, port)
        self.upstream_timeout = upstream_timeout
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.counts: Counter[str] = Counter()   # requests received, by op
        self.exchanges: list[Exchange] = []
        self.dropped = 0
        self.errors: list[str] = []              # proxy-side problems (upstream failures)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="faultproxy-accept")
        self._thread.start()

    # --- rules -----------------------------------------------------------------------------

    def drop_response(self, op: str, status: int | None = 200, times: int = 1,
                      on_drop=None) -> Rule:
        """The next `times` requests whose X-Amz-Target ends with op (".UpdateItem" or
        "UpdateItem") and whose response has this status (None: any) reach the server, but
        the client's connection is closed instead of the response being sent. on_drop(ex),
        if given, runs first (the client is still waiting): say, another writer's move;
        what it raises is recorded in .errors."""
        r = Rule(op if op.startswith(".") else "." + op, status, times, on_drop=on_drop)
        with self._lock:
            self._rules.append(r)
        return r

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def ops(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def _match(self, target: str, status: int) -> Rule | None:
        with self._lock:
            for r in self._rules:
                if r.times > 0 and target.endswith(r.op) and \
                        (r.status is None or r.status == status):
                    r.times -= 1
                    r.fired += 1
                    self.dropped += 1
                    return r
        return None

    # --- plumbing --------------------------------------------------------------------------

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _untrack(self, *socks) -> None:
        with self._lock:
            for s in socks:
                self._socks.discard(s)
        for s in socks:
            _close(s)

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True,
                             name="faultproxy-conn").start()

    def _connect(self) -> tuple[socket.socket, object]:
        u = socket.create_connection(self.target, timeout=5)
        u.settimeout(self.upstream_timeout)
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(u)
        return u, u.makefile("rb")

    def _serve(self, c: socket.socket) -> None:
        u = None
        urf = None
        crf = c.makefile("rb")
        try:
            while not self._stop:
                try:
                    head = _read_head(crf)
                    first, hdrs = _headers(head)
                    method = first.split(" ", 1)[0]
                    raw_body, body, _ = _read_body(crf, hdrs, is_response=False)
                except (_Closed, OSError, ValueError):
                    return
                target = hdrs.get("x-amz-target", "")
                op = target.rsplit(".", 1)[-1] if target else " ".join(first.split(" ")[:2])
                ex = Exchange(op=op, request_body=body)
                with self._lock:
                    self.counts[op] += 1
                    self.exchanges.append(ex)
                # forward; one reconnect if a kept-alive upstream connection was closed
                resp = None
                for attempt in range(2):
                    try:
                        if u is None:
                            u, urf = self._connect()
                        u.sendall(head + raw_body)
                        rhead = _read_head(urf)
                        status_line, rhdrs = _headers(rhead)
                        status = int(status_line.split(" ")[1])
                        rraw, rbody, eof = _read_body(urf, rhdrs, True, status, method)
                        resp = (rhead, rraw, rbody, status, rhdrs, eof)
                        break
                    except (_Closed, OSError, ValueError) as e:
                        self._untrack(u)
                        u, urf = None, None
                        if attempt == 1:
                            self.errors.append(f"{op}: upstream failed: {e}")
                if resp is None:
                    return  # the client sees its connection closed
                rhead, rraw, rbody, status, rhdrs, eof = resp
                ex.status, ex.response_body = status, rbody
                rule = self._match(target, status)
                if rule is not None:
                    ex.dropped = True
                    if rule.on_drop is not None:
                        try:
                            rule.on_drop(ex)
                        except Exception as e:  # noqa: BLE001 — reported via .errors
                            self.errors.append(f"on_drop of {op}: {e!r}")
                    return  # close without sending the response
                c.sendall(rhead + rraw)
                if eof or "close" in rhdrs.get("connection", "").lower() or \
                        "close" in hdrs.get("connection", "").lower():
                    return
        except OSError:
            return
        finally:
            self._untrack(c, *( [u] if u is not None else []))

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.lsock.close()
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            _close(s)
