"""A reverse proxy on loopback in front of a registry, for tests: it slows responses down
to a given rate, can cut a blob's body off once (the connection is closed mid-body), and
records every request and the body bytes it served.

    with FaultProxy(upstream_host, rate=20 << 20) as p:
        ferry save p.host/repo:tag ...
        p.served_blob_bytes(), p.requests

Hostile registries (tests/e2e/test_hostile_registry.py): ``p.add(Fault(...))`` makes the
proxy misbehave on matching requests, ``p.log`` records every request with its headers.

    p.add(Fault("GET", "/blobs/" + digest, times=1, corrupt=True))   # same length, other bytes
    p.add(Fault("GET", "/blobs/", status=503, headers={"Retry-After": "1"}, times=2))
    p.add(Fault("GET", "/manifests/", headers={"Docker-Content-Digest": "sha256:..."}))

``StaticServer`` is a tiny server of its own (a redirect target, a token realm, a decoy) that
answers from a routing function and logs every request it gets.
"""

import http.client
import http.server
import socket
import threading
import time

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


def _no_delay(sock):
    """Headers and body go out in separate writes: without TCP_NODELAY each small response
    waits for the client's delayed ACK (40 ms on Linux)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class Fault:
    """A way to misbehave on requests whose method is ``method`` (None: any) and whose path
    contains ``path`` (a string; or a callable(path) -> bool), ``times`` times (None: every
    time). What it does, in order:

    - ``respond``: callable(handler) that writes the whole response itself (the upstream is
      not asked);
    - ``status``: answer this status with ``headers`` and ``body`` (not forwarded);
    - otherwise the request is forwarded and the upstream's answer altered:
      ``headers`` replace response headers (a value None removes one), ``corrupt`` flips every
      byte of the body (same length), ``body`` replaces it (Content-Length follows unless
      ``content_length`` is given), ``content_length`` announces another length than the body
      has (longer: the body is sent and the connection closed; shorter: only that many bytes
      are sent), ``cut`` sends that many body bytes and closes the connection, ``drip`` sends
      the body one byte every ``drip`` seconds (``stall``: headers, then nothing at all)."""

    def __init__(self, method=None, path=None, times=None, *, when=None, status=None, headers=None, body=None,
                 corrupt=False, content_length=None, cut=None, drip=None, stall=False, respond=None):
        self.method, self.path, self.times, self.when = method, path, times, when
        self.status, self.headers, self.body = status, dict(headers or {}), body
        self.corrupt, self.content_length, self.cut = corrupt, content_length, cut
        self.drip, self.stall, self.respond = drip, stall, respond
        self.hits = 0

    def matches(self, method, path, headers):
        if self.method is not None and self.method != method:
            return False
        if self.when is not None and not self.when(headers):
            return False
        if self.path is None:
            return True
        if callable(self.path):
            return self.path(path)
        return self.path in path


class FaultProxy:
    def __init__(self, upstream, rate=None, chunk=64 << 10, upload_rate=None):
        self.upstream = upstream          # "127.0.0.1:port"
        self.rate = rate                  # bytes per second per response, None = unlimited
        self.upload_rate = upload_rate    # bytes per second per request body, None = unlimited
        self.chunk = chunk
        self.cut_once = {}                # path suffix (e.g. a digest) -> bytes to send before cutting
        self.lock = threading.Lock()
        self.requests = []                # (method, path, range header or None, status)
        self.log = []                     # {"method", "path", "headers", "status", "fault", "time"}
        self.faults = []                  # Fault, first match wins
        self.blob_bytes = 0               # body bytes served for GET .../blobs/...
        self.active = 0                   # responses being sent
        self.server = None
        self.thread = None

    @property
    def host(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def served_blob_bytes(self):
        with self.lock:
            return self.blob_bytes

    def wait_idle(self, timeout=10):
        """Waits until no response is being sent (e.g. to a client that was killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.active == 0:
                    return True
            time.sleep(0.01)
        return False

    def reset_counters(self):
        with self.lock:
            self.requests = []
            self.log = []
            self.blob_bytes = 0

    def add(self, fault):
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def _take_fault(self, method, path, headers):
        with self.lock:
            for f in self.faults:
                if (f.times is None or f.hits < f.times) and f.matches(method, path, headers):
                    f.hits += 1
                    return f
        return None

    def logged(self, method=None, path=None):
        """The log entries of requests with this method whose path contains ``path``."""
        with self.lock:
            return [e for e in self.log if (method is None or e["method"] == method)
                    and (path is None or path in e["path"])]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                _no_delay(self.connection)

            def log_message(self, *args):
                pass

            def _forward(self):
                with proxy.lock:
                    proxy.active += 1
                try:
                    self._forward_inner()
                finally:
                    with proxy.lock:
                        proxy.active -= 1

            def _record(self, status, fault):
                with proxy.lock:
                    proxy.log.append({"method": self.command, "path": self.path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "status": status, "fault": fault is not None,
                                      "time": time.monotonic()})

            def _close(self):
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _read_body(self, length):
                if not proxy.upload_rate:
                    return self.rfile.read(length)
                parts, left = [], length
                while left > 0:
                    part = self.rfile.read(min(proxy.chunk, left))
                    if not part:
                        break
                    parts.append(part)
                    left -= len(part)
                    time.sleep(len(part) / proxy.upload_rate)
                return b"".join(parts)

            def _forward_inner(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self._read_body(length) if length else None
                fault = proxy._take_fault(self.command, self.path,
                                          {k.lower(): v for k, v in self.headers.items()})
                if fault is not None and fault.respond is not None:
                    self._record(None, fault)
                    fault.respond(self)
                    return
                if fault is not None and fault.status is not None:
                    self._record(fault.status, fault)
                    with proxy.lock:
                        proxy.requests.append((self.command, self.path, self.headers.get("Range"), fault.status))
                    data = fault.body or b""
                    self.send_response(fault.status)
                    for k, v in fault.headers.items():
                        if v is not None:
                            self.send_header(k, v)
                    if not any(k.lower() == "content-length" for k in fault.headers):
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                is_blob = self.command == "GET" and "/blobs/sha256:" in self.path
                with proxy.lock:
                    proxy.requests.append((self.command, self.path, self.headers.get("Range"), resp.status))
                self._record(resp.status, fault)
                if fault is not None:
                    self._altered(resp, fault)
                    conn.close()
                    return
                cut = None
                if is_blob and resp.status in (200, 206):
                    with proxy.lock:
                        for key in list(proxy.cut_once):
                            if self.path.endswith(key):
                                cut = proxy.cut_once.pop(key)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in HOP_HEADERS:
                        continue
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, proxy.host)
                    self.send_header(k, v)
                if resp.getheader("Content-Length") is None and self.command != "HEAD":
                    data = resp.read()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    conn.close()
                    return
                self.end_headers()
                sent = 0
                while self.command != "HEAD":
                    data = resp.read(proxy.chunk)
                    if not data:
                        break
                    if cut is not None and sent + len(data) > cut:
                        data = data[:max(0, cut - sent)]
                        self.wfile.write(data)
                        self.wfile.flush()
                        if is_blob:
                            with proxy.lock:
                                proxy.blob_bytes += len(data)
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        break
                    self.wfile.write(data)
                    sent += len(data)
                    if is_blob:
                        with proxy.lock:
                            proxy.blob_bytes += len(data)
                    if proxy.rate:
                        time.sleep(len(data) / proxy.rate)
                conn.close()

            def _altered(self, resp, fault):
                """Sends the upstream's response as `fault` alters it."""
                data = resp.read() if self.command != "HEAD" else b""
                if fault.body is not None:
                    data = fault.body
                if fault.corrupt:
                    data = bytes(b ^ 0xFF for b in data)
                headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS]
                real_length = None
                for k, v in headers:
                    if k.lower() == "content-length":
                        real_length = v
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                for name, value in fault.headers.items():
                    headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
                    if value is not None:
                        headers.append((name, value))
                if self.command == "HEAD":
                    length = real_length if fault.content_length is None else str(fault.content_length)
                else:
                    length = str(len(data) if fault.content_length is None else fault.content_length)
                self.send_response(resp.status)
                for k, v in headers:
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, proxy.host)
                    self.send_header(k, v)
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault.content_length is not None and fault.content_length < len(data):
                    data = data[:fault.content_length]
                if fault.stall:
                    self.wfile.flush()
                    time.sleep(60)  # the client gives up first; the thread is a daemon
                    return
                if fault.drip:
                    try:
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fault.drip)
                    except OSError:
                        pass
                    self._close()
                    return
                if fault.cut is not None:
                    self.wfile.write(data[:fault.cut])
                    self._close()
                    return
                self.wfile.write(data)
                if fault.content_length is not None and fault.content_length > len(data):
                    self._close()

            def do_GET(self):
                self._forward()

            do_HEAD = do_GET
            do_PUT = do_GET
            do_POST = do_GET
            do_PATCH = do_GET
            do_DELETE = do_GET

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client killed mid-response is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class StaticServer:
    """A small HTTP server on 127.0.0.1 that answers every request with
    ``route(method, path, headers) -> (status, {header: value}, body bytes)`` (default: 404)
    and logs it: ``log`` is a list of {"method", "path", "headers" (lower-case names)}. A
    redirect target standing in for a blob store, a token realm, a decoy that must never be
    contacted."""

    def __init__(self, route=None):
        self.route = route or (lambda method, path, headers: (404, {}, b""))
        self.lock = threading.Lock()
        self.log = []
        self.server = None
        self.thread = None

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                _no_delay(self.connection)

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner.lock:
                    owner.log.append({"method": self.command, "path": self.path, "headers": headers})
                status, out_headers, body = owner.route(self.command, self.path, headers)
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
