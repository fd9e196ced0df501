"""The playground's web server: one static page, JSON controls, and frames by Server-Sent Events.

Routes (``{sid}`` is a session id the server handed out):

    GET  /                          the page (static/index.html; static/ holds its CSS and JavaScript)
    POST /api/session               {"setup": {...}} -> {"sid", "setup"}; refused (429) past MAX_SESSIONS
    GET  /api/s/{sid}/events        the SSE stream: "net" after each rebuild, "frame", "notice"
    POST /api/s/{sid}/setup         control values -> the checked setup (400 with a message if refused)
    POST /api/s/{sid}/control       {"action": play|pause|step|epoch|reset, "count": n}
    POST /api/s/{sid}/weight        {"layer", "row", "col", "value"}
    POST /api/s/{sid}/inspect       {"index"} -> the backprop inspector's numbers
    POST /api/s/{sid}/points        {"x", "y", "label"} adds a point of the own data; {"clear": true} empties it
    POST /api/s/{sid}/upload        a CSV body (at most MAX_UPLOAD bytes): x1, x2, target
    POST /api/s/{sid}/close         the page is leaving: the session ends now
    GET  /api/s/{sid}/state         the setup and the counters
    GET  /api/s/{sid}/export/{name} config.toml, data.csv, model.safetensors, train.py, playground.zip

Every value from the page is checked (``setup``); nothing from the page names a file on the server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Route

from minidl.errors import MinidlError
from minidl.playground import routes as r
from minidl.playground.hub import Gone, Hub, TooMany
from minidl.playground.setup import SetupError


def create_app(hub: Hub | None = None) -> Starlette:
    """The Starlette app; ``serve`` adds the allowed hosts (tests use the default, any host)."""
    hub = hub if hub is not None else Hub()
    routes = [
        Route("/", r.page),
        Route("/static/{name}", r.static),
        Route("/api/session", r.new_session, methods=["POST"]),
        Route("/api/s/{sid}/events", r.events),
        Route("/api/s/{sid}/setup", r.change, methods=["POST"]),
        Route("/api/s/{sid}/control", r.control, methods=["POST"]),
        Route("/api/s/{sid}/weight", r.weight, methods=["POST"]),
        Route("/api/s/{sid}/inspect", r.inspector, methods=["POST"]),
        Route("/api/s/{sid}/points", r.points, methods=["POST"]),
        Route("/api/s/{sid}/upload", r.upload, methods=["POST"]),
        Route("/api/s/{sid}/state", r.state),
        Route("/api/s/{sid}/close", r.close, methods=["POST"]),
        Route("/api/s/{sid}/export/{name}", r.download),
    ]
    handlers = {
        SetupError: _status(400),
        TooMany: _status(429),
        Gone: _status(410),
        MinidlError: _status(400),
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        hub.close_all()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.hub = hub
    return app


def _status(code: int) -> Any:
    async def handler(request: Any, error: Exception) -> Any:
        return r._json({"error": str(error)}, code)

    return handler


def serve(host: str, port: int, on_ready: Any = None) -> None:
    """Run the server until interrupted (``minidl playground``); ``on_ready(port)`` once it listens.

    The socket is bound here, before uvicorn starts, so a port in use is an ``OSError`` the CLI prints in
    one line.
    """
    import socket

    import uvicorn

    app = create_app()
    hosts = ["127.0.0.1", "localhost"] if host in ("127.0.0.1", "localhost") else ["*"]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # DNS rebinding: only our own name
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    import torch

    torch.set_num_threads(1)  # small tensors: one thread is fastest, and leaves the other cores free
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if on_ready is not None:
        bound = sock.getsockname()[1]
        threading.Thread(target=_when_started, args=(server, on_ready, bound), daemon=True).start()
    server.run(sockets=[sock])


def _when_started(server: Any, on_ready: Any, port: int) -> None:
    for _ in range(600):
        if server.started:
            on_ready(port)
            return
        time.sleep(0.05)
