"""The playground's request handlers (``server.create_app`` routes them); the hub is ``app.state.hub``."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from minidl.playground import export
from minidl.playground.hub import Hub, Subscriber
from minidl.playground.inspector import inspect
from minidl.playground.owndata import add_point, clear_points, upload_csv
from minidl.playground.session import LOCK
from minidl.playground.setup import Setup, SetupError
from minidl.playground.upload import MAX_UPLOAD, read_upload

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "app.js": "text/javascript",
    "draw.js": "text/javascript",
    "panels.js": "text/javascript",
    "style.css": "text/css",
}
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


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=SECURITY_HEADERS)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise SetupError(f"request body too large ({len(raw)} bytes; at most {MAX_BODY})")
    try:
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
    session = await run_in_threadpool(_hub(request).create, setup)
    return _json({"sid": session.sid, "setup": session.built.setup.to_dict()})


async def events(request: Request) -> Response:
    sid = request.path_params["sid"]
    hub = _hub(request)
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
    session, data = _hub(request).get(request.path_params["sid"]), await _body(request)
    setup = await run_in_threadpool(session.change, data)
    return _json({"setup": setup.to_dict(), "query": setup.to_query()})


async def control(request: Request) -> Response:
    session, data = _hub(request).get(request.path_params["sid"]), await _body(request)
    action = data.get("action")
    if action not in ("play", "pause", "step", "epoch", "reset"):
        raise SetupError(f"control: unknown action {action!r:.40}; choose from play, pause, step, epoch, reset")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise SetupError(f"control: count must be an integer from 1 to 1000, got {count!r:.40}")
    await run_in_threadpool(session.control, action, count)
    return _json({"ok": True})


async def weight(request: Request) -> Response:
    session, data = _hub(request).get(request.path_params["sid"]), await _body(request)
    args = (_int(data, "layer"), _int(data, "row"), _int(data, "col"), _number(data, "value", 100.0))
    await run_in_threadpool(session.edit_weight, *args)
    return _json({"ok": True})


async def inspector(request: Request) -> Response:
    session, data = _hub(request).get(request.path_params["sid"]), await _body(request)
    index = _int(data, "index")

    def run() -> dict[str, Any]:
        with LOCK:
            return inspect(session, index)

    return _json(await run_in_threadpool(run))


async def points(request: Request) -> Response:
    session, data = _hub(request).get(request.path_params["sid"]), await _body(request)
    if data.get("clear"):
        setup = await run_in_threadpool(clear_points, session)
    else:
        regression = session.built.setup.regression
        label = _number(data, "label", 1.0) if regression else float(_int(data, "label"))
        x, y = _number(data, "x", 100.0), _number(data, "y", 100.0)
        setup = await run_in_threadpool(add_point, session, x, y, label)
    return _json({"setup": setup.to_dict(), "query": setup.to_query(), "count": len(session.custom)})


async def upload(request: Request) -> Response:
    session = _hub(request).get(request.path_params["sid"])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD:
        raise SetupError(f"upload: the file is {int(declared)} bytes; at most {MAX_UPLOAD}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_UPLOAD:
            raise SetupError(f"upload: the file is larger than {MAX_UPLOAD} bytes")
    setup = await run_in_threadpool(upload_csv, session, read_upload(bytes(raw), session.folder))
    return _json({"setup": setup.to_dict(), "query": setup.to_query(), "count": len(session.custom)})


async def close(request: Request) -> Response:
    sid, hub = request.path_params["sid"], _hub(request)
    if sid in hub.sessions:
        await run_in_threadpool(hub.close, sid)
    return _json({"ok": True})


async def state(request: Request) -> Response:
    session = _hub(request).get(request.path_params["sid"])
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
    session, name = _hub(request).get(request.path_params["sid"]), request.path_params["name"]
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
