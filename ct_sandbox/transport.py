"""Ways to reach the sandbox apps: in-process httpx transport, or a local HTTP server.

Contract:

- ``sandbox_transport(app) -> httpx.BaseTransport``: ``httpx.WSGITransport`` wrapped to inject
  connect and read timeouts from the app's ``FaultConfig`` (side and world DB taken from the
  app's ``side`` and ``db_path`` attributes). Status faults (429/5xx/409) and latency are
  injected by the apps themselves, so they also happen over real HTTP.
- ``serve(world, host="127.0.0.1", port=8089)``: serves commercetools at ``/`` and the ERP app at
  ``/erp`` with a threaded wsgiref server until interrupted, HTTP/1.1 with persistent
  connections (a pooled client connection serves many requests; wsgiref's own handler answers
  one request per connection, so every request paid a TCP connect and a new server thread). ``PATH_INFO`` keeps the ``/erp``
  prefix, exactly as it arrives in-process through ``SANDBOX_ERP_URL``.

Additions beyond the contract:

- ``sandbox_transport(app, db_path=..., side=...)`` for apps without those attributes.
- A read timeout on a write (POST/PUT/PATCH/DELETE) with ``timeout_after_write`` lets the app
  apply the write, then raises ``httpx.ReadTimeout`` (the request log row gets the fault
  ``ReadTimeoutAfterWrite``). Timeouts that happen before the app is reached are logged with
  status ``None`` and fault ``ConnectTimeout`` / ``ReadTimeout``.
- ``make_server(commercetools_app, erp_app=None, host, port)`` returns the (not yet running)
  threaded server; ``start_server(...)`` runs one on a daemon thread and returns a
  ``RunningServer`` (``.url``, ``.stop()``, context manager), handy for tests (``port=0``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _wsgi_server

import httpx

from ct_sandbox.faults import annotate_request, draw_fault, load_faults, log_request

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SandboxTransport(httpx.BaseTransport):
    """In-process transport to a sandbox WSGI app, with injected network timeouts."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        db_path: str | os.PathLike[str] | None = None,
        side: str | None = None,
    ) -> None:
        self.app = app
        self._inner = httpx.WSGITransport(app=app)
        path = db_path if db_path is not None else getattr(app, "db_path", None)
        self.db_path = os.fspath(path) if path is not None else None
        self.side = side if side is not None else getattr(app, "side", None)

    def __repr__(self) -> str:
        return f"SandboxTransport(side={self.side!r})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.db_path is None or self.side is None:
            return self._inner.handle_request(request)
        cfg = load_faults(self.db_path, self.side)
        path = request.url.path
        is_auth = path.rstrip("/").endswith("/oauth/token")
        if not cfg.any_timeouts or not cfg.applies_to(path) or (is_auth and not cfg.include_auth):
            return self._inner.handle_request(request)
        chosen = draw_fault(
            self.db_path,
            self.side,
            cfg,
            [("ConnectTimeout", cfg.rate_connect_timeout), ("ReadTimeout", cfg.rate_read_timeout)],
        )
        if chosen == "ConnectTimeout":
            log_request(self.db_path, self.side, request.method, path, None, chosen)
            raise httpx.ConnectTimeout("sandbox: injected connect timeout", request=request)
        if chosen == "ReadTimeout":
            if request.method in WRITE_METHODS and not is_auth and cfg.timeout_after_write:
                # The write lands; only the answer is lost.
                response = self._inner.handle_request(request)
                response.read()
                seq = response.headers.get("X-Sandbox-Request-Seq")
                if seq is not None:
                    annotate_request(self.db_path, int(seq), "ReadTimeoutAfterWrite")
                raise httpx.ReadTimeout(
                    "sandbox: injected read timeout after the write", request=request
                )
            log_request(self.db_path, self.side, request.method, path, None, chosen)
            raise httpx.ReadTimeout("sandbox: injected read timeout", request=request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def sandbox_transport(
    app: WSGIApp,
    *,
    db_path: str | os.PathLike[str] | None = None,
    side: str | None = None,
) -> httpx.BaseTransport:
    """An httpx transport that calls ``app`` in-process, with faults from the world DB."""
    return SandboxTransport(app, db_path=db_path, side=side)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The apps keep their own request log; stderr noise helps nobody.
        pass


class _PersistentServerHandler(ServerHandler):
    http_version = "1.1"
    length_known = False
    headers: Any
    request_handler: Any

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # Without a length the answer ends when the connection does: it cannot be kept.
        self.length_known = self.headers is not None and "Content-Length" in self.headers


class _PersistentHandler(_QuietHandler):
    """HTTP/1.1 with persistent connections, one request after another on a connection."""

    protocol_version = "HTTP/1.1"
    # Status line, headers and body go out in one flush; no Nagle delay on small answers.
    disable_nagle_algorithm = True
    wbufsize = -1

    def handle(self) -> None:
        self.close_connection = True
        self._handle_one()
        while not self.close_connection:
            self._handle_one()

    def _handle_one(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            self.wfile.flush()
            return
        if not self.parse_request():  # an error was sent
            self.close_connection = True
            self.wfile.flush()
            return
        if "chunked" in str(self.headers.get("Transfer-Encoding", "")).lower():
            self.send_error(411, "a request body needs a Content-Length")
            self.close_connection = True
            self.wfile.flush()
            return
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = 0
        # The body is read here, whatever the app reads of it: the next request starts after it.
        body = self.rfile.read(length) if length else b""
        wfile: Any = self.wfile
        handler = _PersistentServerHandler(
            io.BytesIO(body), wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        server: Any = self.server
        handler.run(server.get_app())
        if not handler.length_known:
            self.close_connection = True
        self.wfile.flush()


def _mount(commercetools_app: WSGIApp, erp_app: WSGIApp | None) -> WSGIApp:
    def router(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/erp" or path.startswith("/erp/"):
            if erp_app is None:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [b'{"statusCode":404,"message":"No ERP app is mounted."}']
            return erp_app(environ, start_response)
        return commercetools_app(environ, start_response)

    return router


def make_server(
    commercetools_app: WSGIApp,
    erp_app: WSGIApp | None = None,
    host: str = "127.0.0.1",
    port: int = 8089,
) -> WSGIServer:
    """A threaded wsgiref server with commercetools at / and the ERP at /erp (not started)."""
    return _wsgi_server(
        host,
        port,
        _mount(commercetools_app, erp_app),
        server_class=_ThreadingWSGIServer,
        handler_class=_PersistentHandler,
    )


def _apps_of(world: Any) -> tuple[WSGIApp, WSGIApp | None]:
    def pick(name: str) -> Any:
        value = getattr(world, name, None)
        # A factory method or a ready app: WSGI apps are callables taking two arguments.
        if callable(value) and not hasattr(value, "db_path"):
            try:
                return value()
            except TypeError:
                return value
        return value

    commercetools_app = pick("commercetools_app")
    if commercetools_app is None:
        from ct_sandbox import SANDBOX_PROJECT_KEY
        from ct_sandbox.commercetools import CommercetoolsSandboxApp

        commercetools_app = CommercetoolsSandboxApp(
            world.db_path, getattr(world, "project_key", SANDBOX_PROJECT_KEY)
        )
    return commercetools_app, pick("erp_app")


@dataclass
class RunningServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    commercetools_app: WSGIApp,
    erp_app: WSGIApp | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningServer:
    """Serve on a daemon thread (``port=0`` picks a free port); stop with ``.stop()``."""
    server = make_server(commercetools_app, erp_app, host, port)
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    thread.start()
    return RunningServer(server, thread)


def serve(world: Any, host: str = "127.0.0.1", port: int = 8089) -> None:
    """Serve the world's commercetools and ERP apps until interrupted (Ctrl-C)."""
    commercetools_app, erp_app = _apps_of(world)
    server = make_server(commercetools_app, erp_app, host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
