"""A fault-injecting reverse proxy in front of a real S3 server: it forwards every request as
the client sent it (Host included, which SigV4 signs) and answers some writes with the
``503 SlowDown`` a busy S3 answers, instead of forwarding them. Use as a context manager."""
from __future__ import annotations

import http.client
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CHUNK = 1 << 16
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade",
              "expect"}  # expect is answered here (100 Continue) and not signed by SigV4
SLOW_DOWN = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             "<Message>Please reduce your request rate.</Message><Resource>{path}</Resource>"
             "<RequestId>{id}</RequestId><HostId>{id}</HostId></Error>")


class SlowDownProxy:
    """Forwards to ``upstream``; of the requests whose method is in ``methods`` (writes), refuses
    the first ``first`` and then every ``every``-th (0: none) with 503 SlowDown."""

    def __init__(self, upstream: str, *, every: int = 0, first: int = 0,
                 methods: tuple[str, ...] = ("PUT", "POST")) -> None:
        self.upstream = urlsplit(upstream)
        self.every, self.first, self.methods = every, first, methods
        self.seen = 0      # requests of ``methods`` received
        self.refused = 0   # of which answered 503 SlowDown
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def refuses(self, method: str) -> bool:
        """Whether this request is refused (counted, under the lock: requests come in parallel)."""
        if method not in self.methods:
            return False
        with self._lock:
            self.seen += 1
            refuse = self.seen <= self.first or bool(self.every and (self.seen - self.first) % self.every == 0)
            self.refused += refuse
            return refuse

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> "SlowDownProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(proxy: SlowDownProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and 100 Continue sent by parse_request

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if proxy.refuses(self.command):
                self._drain(length)  # the client sent it (after 100 Continue): read before answering
                body = SLOW_DOWN.format(path=self.path.split("?")[0], id=uuid.uuid4().hex[:16]).encode()
                self.send_response(503, "Slow Down")
                for name, value in (("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                                    ("Retry-After", "1")):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                return
            upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=130)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.endheaders()
                while length > 0:
                    chunk = self.rfile.read(min(CHUNK, length))
                    if not chunk:
                        raise ConnectionError("the client closed its request body early")
                    upstream.send(chunk)
                    length -= len(chunk)
                self._answer(upstream.getresponse())
            finally:
                upstream.close()

        def _drain(self, length: int) -> None:
            while length > 0 and (chunk := self.rfile.read(min(CHUNK, length))):
                length -= len(chunk)

        def _answer(self, response: http.client.HTTPResponse) -> None:
            """Status, headers and body as the server gave them (a chunked body re-sent whole)."""
            body = b"" if self.command == "HEAD" else response.read()
            self.send_response_only(response.status, response.reason)  # its Date and Server kept
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                    self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Handler
