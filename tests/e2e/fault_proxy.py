"""A reverse proxy on loopback in front of a registry, for tests: it slows responses down
to a given rate, can cut a blob's body off once (the connection is closed mid-body), and
records every request and the body bytes it served.

    with FaultProxy(upstream_host, rate=20 << 20) as p:
        ferry save p.host/repo:tag ...
        p.served_blob_bytes(), p.requests
"""

import http.client
import http.server
import socket
import threading
import time

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


class FaultProxy:
    def __init__(self, upstream, rate=None, chunk=64 << 10):
        self.upstream = upstream          # "127.0.0.1:port"
        self.rate = rate                  # bytes per second per response, None = unlimited
        self.chunk = chunk
        self.cut_once = {}                # path suffix (e.g. a digest) -> bytes to send before cutting
        self.lock = threading.Lock()
        self.requests = []                # (method, path, range header or None, status)
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
            self.blob_bytes = 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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

            def _forward_inner(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                is_blob = self.command == "GET" and "/blobs/sha256:" in self.path
                with proxy.lock:
                    proxy.requests.append((self.command, self.path, self.headers.get("Range"), resp.status))
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
