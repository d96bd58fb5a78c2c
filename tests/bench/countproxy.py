# SPDX-License-Identifier: MIT
"""A counting TCP proxy for plain-HTTP S3: counts requests by S3 operation, relays bytes as is.

The benchmark puts one of these between each client (s3vfs, s3fs, rclone, curl) and RGW, so
that every client's requests are counted the same way, from the wire. It is not an HTTP
proxy in the RFC sense: clients use it as their endpoint (path-style), and each accepted
connection is tied to one upstream connection.

Per connection two threads:
  client -> upstream   parses each request's head (request line + headers) to count it, then
                       forwards its body by Content-Length or chunked framing without looking
                       at it (os.splice through a pipe: the bytes never enter Python)
  upstream -> client   relays everything (os.splice); responses are not parsed

so the proxy never waits for a response before forwarding (Expect: 100-continue works as it
does without it) and costs little CPU. Only the request heads are parsed, with a size cap.

The classification (classify()) follows S3's REST API and uses the names of s3vfs's own
statistics (fs/ stats xattr): head, get, put, list, copy, delete, delete_multi, mpu_create,
mpu_part, mpu_part_copy, mpu_complete, mpu_abort, mpu_list, plus bucket-level ones.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from urllib.parse import parse_qsl

MAX_HEAD = 64 * 1024          # a request head larger than this is a protocol error
CHUNK = 1 << 20               # splice / recv size
_SPLICE = hasattr(os, "splice")


def classify(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 operation of one path-style request (headers: lower-case names)."""
    path, _, query = target.partition("?")
    q = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    parts = path.lstrip("/").split("/", 1)
    key = parts[1] if len(parts) > 1 else ""
    copy = "x-amz-copy-source" in headers
    if method == "HEAD":
        return "head" if key else "head_bucket"
    if method == "GET":
        if not key:
            if "uploads" in q:
                return "mpu_list"
            if q & {"location", "versioning", "acl", "policy", "tagging", "lifecycle", "cors"}:
                return "bucket_other"
            return "list"  # ListObjects (V1 or V2: list-type=2)
        if "uploadId" in q:
            return "mpu_list_parts"
        return "get"
    if method == "PUT":
        if not key:
            return "bucket_create"
        if "partNumber" in q and "uploadId" in q:
            return "mpu_part_copy" if copy else "mpu_part"
        if q & {"acl", "tagging"}:
            return "put_other"
        return "copy" if copy else "put"
    if method == "POST":
        if "uploads" in q:
            return "mpu_create"
        if "uploadId" in q:
            return "mpu_complete"
        if "delete" in q:
            return "delete_multi"
        return "post_other"
    if method == "DELETE":
        if "uploadId" in q:
            return "mpu_abort"
        return "delete" if key else "bucket_delete"
    return "other"


class CountingProxy:
    """Listen on 127.0.0.1 (a free port), forward every connection to upstream (host, port).

    .endpoint is the URL to give clients; .snapshot() the counters so far:
    {"requests": {op: n, ..., "total": n}, "bytes_up": n, "bytes_down": n, "connections": n}.
    stop() closes the listener and every connection and joins the threads (bounded).
    """

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}   # protected by _lock
        self._bytes_up = 0                  # protected by _lock
        self._bytes_down = 0                # protected by _lock
        self._conns = 0                     # protected by _lock
        self._socks: set[socket.socket] = set()   # protected by _lock
        self._threads: list[threading.Thread] = []  # protected by _lock
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept",
                                          daemon=True)
        self._acceptor.start()

    # --- counters ------------------------------------------------------------------------

    def snapshot(self) -> dict:
        with self._lock:
            req = dict(self._counts)
            req["total"] = sum(self._counts.values())
            return {"requests": req, "bytes_up": self._bytes_up,
                    "bytes_down": self._bytes_down, "connections": self._conns}

    @staticmethod
    def delta(after: dict, before: dict) -> dict:
        ops = set(after["requests"]) | set(before["requests"])
        req = {op: after["requests"].get(op, 0) - before["requests"].get(op, 0) for op in ops}
        return {"requests": {k: v for k, v in req.items() if v or k == "total"},
                "bytes_up": after["bytes_up"] - before["bytes_up"],
                "bytes_down": after["bytes_down"] - before["bytes_down"]}

    def _count(self, op: str) -> None:
        with self._lock:
            self._counts[op] = self._counts.get(op, 0) + 1

    def _add_bytes(self, up: int = 0, down: int = 0) -> None:
        with self._lock:
            self._bytes_up += up
            self._bytes_down += down

    # --- connections ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed by stop()
            try:
                up = socket.create_connection(self.upstream, timeout=10)
                up.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping:
                    client.close()
                    up.close()
                    return
                self._conns += 1
                self._socks.update((client, up))
                pair = _Pair(client, up)
                ts = [threading.Thread(target=self._requests, args=(pair,), daemon=True,
                                       name="proxy-c2u"),
                      threading.Thread(target=self._responses, args=(pair,), daemon=True,
                                       name="proxy-u2c")]
                self._threads = [t for t in self._threads if t.is_alive()] + ts
            for t in ts:
                t.start()

    def _responses(self, pair: "_Pair") -> None:
        try:
            while True:
                n = _relay(pair.up, pair.client, CHUNK, pair.pipe_u2c)
                if n == 0:
                    break
                self._add_bytes(down=n)
        except OSError:
            pass
        pair.half_close(pair.client)

    def _requests(self, pair: "_Pair") -> None:
        buf = b""
        try:
            while True:
                # the head of the next request
                while b"\r\n\r\n" not in buf:
                    if len(buf) > MAX_HEAD:
                        raise OSError("request head too large")
                    data = pair.client.recv(CHUNK)
                    if not data:
                        if buf:
                            pair.up.sendall(buf)
                        return
                    buf += data
                end = buf.index(b"\r\n\r\n") + 4
                head, buf = buf[:end], buf[end:]
                lines = head.decode("latin-1").split("\r\n")
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                headers = {}
                for ln in lines[1:]:
                    k, sep, v = ln.partition(":")
                    if sep:
                        headers[k.strip().lower()] = v.strip()
                self._count(classify(method, target, headers))
                pair.up.sendall(head)
                # its body
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    buf = self._forward_chunked(pair, buf)
                else:
                    n = int(headers.get("content-length", "0") or 0)
                    take = min(n, len(buf))
                    if take:
                        pair.up.sendall(buf[:take])
                    buf = buf[take:]
                    rest = n - take
                    while rest > 0:
                        got = _relay(pair.client, pair.up, min(rest, CHUNK),
                                     pair.pipe_c2u)
                        if got == 0:
                            return
                        rest -= got
                    self._add_bytes(up=n)
        except (OSError, ValueError):
            pass
        finally:
            pair.half_close(pair.up)

    def _forward_chunked(self, pair: "_Pair", buf: bytes) -> bytes:
        """Forward one chunked body; return what follows it in buf."""
        def need(pred):
            nonlocal buf
            while not pred():
                data = pair.client.recv(CHUNK)
                if not data:
                    raise OSError("eof in chunked body")
                buf += data
        total = 0
        while True:
            need(lambda: b"\r\n" in buf)
            i = buf.index(b"\r\n") + 2
            size = int(buf[:i].split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # optional trailer lines, then an empty line
                need(lambda: buf[i:i + 2] == b"\r\n" or b"\r\n\r\n" in buf[i:])
                j = i + 2 if buf[i:i + 2] == b"\r\n" else buf.index(b"\r\n\r\n", i) + 4
                pair.up.sendall(buf[:j])
                self._add_bytes(up=total)
                return buf[j:]
            need(lambda: len(buf) >= i + size + 2)
            pair.up.sendall(buf[:i + size + 2])
            buf = buf[i + size + 2:]
            total += size

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            socks = list(self._socks)
            threads = list(self._threads)
        try:
            self._listener.close()
        except OSError:
            pass
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._acceptor.join(timeout)
        for t in threads:
            t.join(timeout)


class _Pair:
    """A client connection and its upstream connection, with a pipe per direction."""

    def __init__(self, client: socket.socket, up: socket.socket):
        self.client, self.up = client, up
        self.pipe_c2u = _pipe() if _SPLICE else None
        self.pipe_u2c = _pipe() if _SPLICE else None
        self._lock = threading.Lock()
        self._closed = 0  # protected by _lock: directions done

    def half_close(self, dst: socket.socket) -> None:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._closed += 1
            last = self._closed == 2
        if last:
            for s in (self.client, self.up):
                s.close()
            for p in (self.pipe_c2u, self.pipe_u2c):
                if p:
                    os.close(p[0])
                    os.close(p[1])


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)  # fewer, larger splices
    except (OSError, AttributeError):
        pass
    return r, w


def _relay(src: socket.socket, dst: socket.socket, n: int, pipe) -> int:
    """Move up to n bytes (what one read gives) from src to dst; 0 at end of file."""
    if pipe is None:
        data = src.recv(n)
        if data:
            dst.sendall(data)
        return len(data)
    r, w = pipe
    got = os.splice(src.fileno(), w, n)
    left = got
    while left:
        left -= os.splice(r, dst.fileno(), left)
    return got
