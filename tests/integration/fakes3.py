# SPDX-License-Identifier: MIT
"""A fake S3 server on 127.0.0.1 for hostile-server tests: a minimal, honest S3 (path-style
HEAD bucket, ListObjectsV2 with prefix/delimiter/encoding-type=url, HEAD and ranged GET of
objects, PUT, DELETE) that checks no signature, and hooks that replace its answer for chosen
requests with crafted bytes (huge or endless bodies, hostile XML, lying headers).

    srv = FakeS3("bucket")
    srv.objects["ok.txt"] = b"fine"
    srv.hook("list", "evil/", lambda c, req: c.sendall(b"HTTP/1.1 200 OK\\r\\n..."))
    srv.endpoint, srv.requests (every request: method, target, op, key, headers), srv.close()

A hook gets (sock, req) and writes what it wants; it returns True to keep the connection
for the next request, else it is closed. req.query["prefix"] etc. are decoded strings.
"""
from __future__ import annotations

import email.utils
import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

MAX_HEAD = 1024 * 1024


@dataclass
class Req:
    method: str
    target: str
    op: str
    key: str
    query: dict
    headers: dict
    body: bytes = b""
    t: float = field(default_factory=time.monotonic)


def _op(method: str, key: str, query: dict) -> str:
    if method == "HEAD":
        return "head" if key else "bucket"
    if method == "GET":
        return "get" if key else ("list" if "list-type" in query else "bucket_get")
    if method == "PUT":
        if "uploadId" in query:
            return "part"
        return "put"
    if method == "POST":
        return "mpu_create" if "uploads" in query else (
            "mpu_complete" if "uploadId" in query else "post")
    if method == "DELETE":
        return "delete"
    return "other"


def xml_error(code: str, status_msg: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{status_msg or code}</Message><RequestId>fake</RequestId>"
            "</Error>").encode()


def response(status: int, headers: dict | None = None, body: bytes = b"",
             head_only: bool = False) -> bytes:
    reason = {200: "OK", 204: "No Content", 206: "Partial Content", 304: "Not Modified",
              403: "Forbidden", 404: "Not Found", 412: "Precondition Failed",
              416: "Range Not Satisfiable", 500: "Internal Server Error"}.get(status, "X")
    h = {"Content-Length": str(len(body)), "x-amz-request-id": "fake",
         "Date": email.utils.formatdate(usegmt=True)}
    h.update(headers or {})
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


class FakeS3:
    def __init__(self, bucket: str):
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.mtime = time.time() - 3600
        self.requests: list[Req] = []
        self._hooks: list[tuple[str, str, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: set[socket.socket] = set()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fakes3")
        self._thread.start()

    # --- hooks ---------------------------------------------------------------------------

    def hook(self, op: str, match: str, fn) -> None:
        """fn(sock, req) answers requests of op whose key (for list: prefix) starts with
        match."""
        with self._lock:
            self._hooks.append((op, match, fn))

    def unhook_all(self) -> None:
        with self._lock:
            self._hooks.clear()

    def count(self, op: str, match: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.op == op and
                       (r.key if op != "list" else r.query.get("prefix", "")).startswith(match))

    # --- the honest server ---------------------------------------------------------------

    def etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'

    def obj_headers(self, key: str) -> dict:
        return {"ETag": self.etag(key), "Content-Type": "application/octet-stream",
                "Last-Modified": email.utils.formatdate(self.mtime, usegmt=True)}

    def list_xml(self, prefix: str, delimiter: str, extra: str = "") -> bytes:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        contents, prefixes = [], []
        for k in keys:
            rest = k[len(prefix):]
            if delimiter and delimiter in rest:
                p = prefix + rest.split(delimiter, 1)[0] + delimiter
                if p not in prefixes:
                    prefixes.append(p)
                continue
            contents.append(
                f"<Contents><Key>{quote(k, safe='/')}</Key><LastModified>"
                f"{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(self.mtime))}"
                f"</LastModified><ETag>{self.etag(k)}</ETag><Size>{len(self.objects[k])}"
                f"</Size><StorageClass>STANDARD</StorageClass></Contents>")
        cp = "".join(f"<CommonPrefixes><Prefix>{quote(p, safe='/')}</Prefix></CommonPrefixes>"
                     for p in prefixes)
        return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{self.bucket}</Name><Prefix>{quote(prefix, safe='/')}</Prefix>"
                f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>1000</MaxKeys>"
                f"<Delimiter>{delimiter}</Delimiter><EncodingType>url</EncodingType>"
                f"<IsTruncated>false</IsTruncated>{''.join(contents)}{cp}{extra}"
                "</ListBucketResult>").encode()

    def honest(self, req: Req) -> bytes:
        if req.op == "bucket":
            return response(200, head_only=True)
        if req.op == "list":
            return response(200, {"Content-Type": "application/xml"},
                            self.list_xml(req.query.get("prefix", ""),
                                          req.query.get("delimiter", "")))
        key = req.key
        if req.op in ("head", "get"):
            if key not in self.objects:
                return response(404, {"Content-Type": "application/xml"},
                                xml_error("NoSuchKey"), head_only=req.method == "HEAD")
            data = self.objects[key]
            h = self.obj_headers(key)
            rng = req.headers.get("range")
            if req.method == "GET" and rng and rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                a = int(a)
                b = min(int(b), len(data) - 1) if b else len(data) - 1
                if a >= len(data):
                    return response(416, {}, xml_error("InvalidRange"))
                h["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
                return response(206, h, data[a:b + 1])
            h["Content-Length"] = str(len(data))
            if req.method == "HEAD":
                lines = ["HTTP/1.1 200 OK"] + [f"{k}: {v}" for k, v in h.items()]
                return ("\r\n".join(lines) + "\r\n\r\n").encode()
            return response(200, h, data)
        if req.op == "put":
            self.objects[key] = req.body
            return response(200, {"ETag": self.etag(key)})
        if req.op == "delete":
            self.objects.pop(key, None)
            return response(204)
        return response(501, {"Content-Type": "application/xml"}, xml_error("NotImplemented"))

    # --- plumbing ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._socks.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        rf = c.makefile("rb")
        try:
            while not self._stop.is_set():
                lines, size = [], 0
                while True:
                    ln = rf.readline(MAX_HEAD)
                    if not ln:
                        return
                    size += len(ln)
                    if not lines and ln in (b"\r\n", b"\n"):
                        continue
                    lines.append(ln)
                    if ln in (b"\r\n", b"\n") or size > MAX_HEAD:
                        break
                first = lines[0].decode("latin-1").strip()
                method, target = first.split(" ")[:2]
                hdrs = {}
                for ln in lines[1:]:
                    t = ln.decode("latin-1")
                    if ":" in t:
                        k, v = t.split(":", 1)
                        hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0") or 0)
                body = rf.read(n) if n else b""
                sp = urlsplit(target)
                path = unquote(sp.path).lstrip("/")
                key = path.split("/", 1)[1] if "/" in path else ""
                query = {k: v[0] for k, v in parse_qs(sp.query, keep_blank_values=True).items()}
                req = Req(method, target, _op(method, key, query), key, query, hdrs, body)
                with self._lock:
                    self.requests.append(req)
                    hooks = list(self._hooks)
                fn = None
                for op, match, f in hooks:
                    subject = req.query.get("prefix", "") if op == "list" else req.key
                    if op == req.op and subject.startswith(match):
                        fn = f
                        break
                if fn is not None:
                    try:
                        keep = fn(c, req)
                    except OSError:
                        return
                    if not keep:
                        return
                    continue
                c.sendall(self.honest(req))
        except OSError:
            return
        finally:
            with self._lock:
                self._socks.discard(c)
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
