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

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from minidl.errors import MinidlError
from minidl.playground import export
from minidl.playground.hub import Gone, Hub, Subscriber, TooMany
from minidl.playground.inspector import inspect
from minidl.playground.session import LOCK
from minidl.playground.setup import Setup, SetupError
from minidl.playground.upload import MAX_UPLOAD, read_upload

STATIC = Path(__file__).parent / "static"
MAX_BODY = 16_384
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=SECURITY_HEADERS)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise SetupError(f"request body too large ({len(raw)} bytes; at most {MAX_BODY})")
    try:
        import json

        data = json.loads(raw or b"{}")
    except ValueError:
        raise SetupError("request body is not JSON") from None
    if not isinstance(data, dict):
        raise SetupError("request body must be a JSON object")
    return data


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SetupError(f"{key} must be an integer, got {value!r:.40}")
    return value


def _number(data: dict[str, Any], key: str, limit: float) -> float:
    value = data.get(key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SetupError(f"{key} must be a number, got {value!r:.40}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
        raise SetupError(f"{key} must be a number from -{limit} to {limit}, got {value!r:.40}")
    return float(value)


def create_app(hub: Hub | None = None) -> Starlette:
    """The Starlette app; ``allowed_hosts`` is set by ``serve`` (tests use the default, any host)."""
    from starlette.concurrency import run_in_threadpool

    hub = hub if hub is not None else Hub()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:  # a fixed list: nothing from the page names a file
            return _json({"error": "not found"}, 404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)

    async def new_session(request: Request) -> Response:
        data = await _body(request)
        setup = Setup.parse(data.get("setup", {}))
        session = await run_in_threadpool(hub.create, setup)
        return _json({"sid": session.sid, "setup": session.built.setup.to_dict()})

    async def events(request: Request) -> Response:
        sid = request.path_params["sid"]
        session = hub.get(sid)
        sub = Subscriber(asyncio.get_running_loop())
        sub.put("net", session.net)
        hub.subscribers.setdefault(sid, []).append(sub)
        session.connect(+1)

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        await asyncio.wait_for(sub.event.wait(), 15)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                    sub.event.clear()
                    while sub.messages:
                        kind, data = sub.messages.popleft()
                        yield f"event: {kind}\ndata: {data}\n\n"
                    frame, sub.frame = sub.frame, None
                    if frame is not None:
                        yield f"event: frame\ndata: {frame}\n\n"
            finally:
                if sub in hub.subscribers.get(sid, []):
                    hub.subscribers[sid].remove(sub)
                session.connect(-1)

        headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def change(request: Request) -> Response:
        session, data = hub.get(request.path_params["sid"]), await _body(request)
        setup = await run_in_threadpool(session.change, data)
        return _json({"setup": setup.to_dict(), "query": setup.to_query()})

    async def control(request: Request) -> Response:
        session, data = hub.get(request.path_params["sid"]), await _body(request)
        action = data.get("action")
        if action not in ("play", "pause", "step", "epoch", "reset"):
            raise SetupError(f"control: unknown action {action!r:.40}; choose from play, pause, step, epoch, reset")
        count = data.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise SetupError(f"control: count must be an integer from 1 to 1000, got {count!r:.40}")
        await run_in_threadpool(session.control, action, count)
        return _json({"ok": True})

    async def weight(request: Request) -> Response:
        session, data = hub.get(request.path_params["sid"]), await _body(request)
        args = (_int(data, "layer"), _int(data, "row"), _int(data, "col"), _number(data, "value", 100.0))
        await run_in_threadpool(session.edit_weight, *args)
        return _json({"ok": True})

    async def inspector(request: Request) -> Response:
        session, data = hub.get(request.path_params["sid"]), await _body(request)
        index = _int(data, "index")

        def run() -> dict[str, Any]:
            with LOCK:
                return inspect(session, index)

        return _json(await run_in_threadpool(run))

    async def points(request: Request) -> Response:
        session, data = hub.get(request.path_params["sid"]), await _body(request)
        if data.get("clear"):
            setup = await run_in_threadpool(session.clear_points)
        else:
            regression = session.built.setup.regression
            label = _number(data, "label", 1.0) if regression else float(_int(data, "label"))
            x, y = _number(data, "x", 100.0), _number(data, "y", 100.0)
            setup = await run_in_threadpool(session.add_point, x, y, label)
        return _json({"setup": setup.to_dict(), "query": setup.to_query(), "count": len(session.custom)})

    async def upload(request: Request) -> Response:
        session = hub.get(request.path_params["sid"])
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD:
            raise SetupError(f"upload: the file is {int(declared)} bytes; at most {MAX_UPLOAD}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_UPLOAD:
                raise SetupError(f"upload: the file is larger than {MAX_UPLOAD} bytes")
        setup = await run_in_threadpool(session.upload, bytes(raw), read_upload)
        return _json({"setup": setup.to_dict(), "query": setup.to_query(), "count": len(session.custom)})

    async def close(request: Request) -> Response:
        sid = request.path_params["sid"]
        if sid in hub.sessions:
            await run_in_threadpool(hub.close, sid)
        return _json({"ok": True})

    async def state(request: Request) -> Response:
        session = hub.get(request.path_params["sid"])
        built = session.built
        return _json(
            {
                "setup": built.setup.to_dict(),
                "query": built.setup.to_query(),
                "step": built.trainer.loop.global_step,
                "epoch": len(built.trainer.history),
                "playing": session.playing,
                "connections": session.connections,
                "edits": session.edits,
                "error": session.error,
            }
        )

    async def download(request: Request) -> Response:
        session, name = hub.get(request.path_params["sid"]), request.path_params["name"]
        makers = {
            "config.toml": (lambda: export.config_toml(session).encode(), "application/toml"),
            "data.csv": (lambda: (session.folder / "data.csv").read_bytes(), "text/csv"),
            "model.safetensors": (lambda: export.model_bytes(session), "application/octet-stream"),
            "train.py": (lambda: export.script(session).encode(), "text/x-python"),
            "playground.zip": (lambda: export.zip_bytes(session), "application/zip"),
        }
        if name not in makers:
            return _json({"error": f"no export named {name!r:.40}"}, 404)
        make, media = makers[name]

        def run() -> bytes:
            with LOCK:
                return make()

        body = await run_in_threadpool(run)
        headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
        return Response(body, media_type=media, headers=headers)

    async def refused(request: Request, error: Exception) -> Response:
        return _json({"error": str(error)}, 400)

    async def too_many(request: Request, error: Exception) -> Response:
        return _json({"error": str(error)}, 429)

    async def gone(request: Request, error: Exception) -> Response:
        return _json({"error": str(error)}, 410)

    async def failed(request: Request, error: Exception) -> Response:
        return _json({"error": f"{error}"}, 400)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/session", new_session, methods=["POST"]),
        Route("/api/s/{sid}/events", events),
        Route("/api/s/{sid}/setup", change, methods=["POST"]),
        Route("/api/s/{sid}/control", control, methods=["POST"]),
        Route("/api/s/{sid}/weight", weight, methods=["POST"]),
        Route("/api/s/{sid}/inspect", inspector, methods=["POST"]),
        Route("/api/s/{sid}/points", points, methods=["POST"]),
        Route("/api/s/{sid}/upload", upload, methods=["POST"]),
        Route("/api/s/{sid}/state", state),
        Route("/api/s/{sid}/close", close, methods=["POST"]),
        Route("/api/s/{sid}/export/{name}", download),
    ]
    handlers = {SetupError: refused, TooMany: too_many, Gone: gone, MinidlError: failed}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        hub.close_all()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.hub = hub
    return app


STATIC_FILES = {
    "app.js": "text/javascript",
    "draw.js": "text/javascript",
    "panels.js": "text/javascript",
    "style.css": "text/css",
}


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
