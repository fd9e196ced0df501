"""The server's sessions and their Server-Sent Events subscribers (one per connected page)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import deque

from minidl.playground.session import Session
from minidl.playground.setup import Setup

MAX_SESSIONS = 4
IDLE_SECONDS = 60  # a session with no page connected for this long is closed


class Subscriber:
    """One SSE connection: pending messages (``net``, ``notice``) in order, and the newest frame only."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.event = loop, asyncio.Event()
        self.messages: deque[tuple[str, str]] = deque(maxlen=32)
        self.frame: str | None = None

    def put(self, kind: str, data: str) -> None:  # called from the session's worker thread
        if kind == "frame":
            self.frame = data
        else:
            self.messages.append((kind, data))
        self.loop.call_soon_threadsafe(self.event.set)


class Hub:
    """The sessions and their subscribers."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.subscribers: dict[str, list[Subscriber]] = {}
        self.guard = threading.Lock()

    def create(self, setup: Setup) -> Session:
        self.reap()
        with self.guard:
            if len(self.sessions) >= MAX_SESSIONS:
                raise TooMany(f"too many open playground pages ({MAX_SESSIONS}); close one and reload")
            sid = secrets.token_urlsafe(12)
            self.subscribers[sid] = []
        try:
            session = Session(sid, setup, lambda kind, data: self.publish(sid, kind, data))
        except BaseException:
            with self.guard:
                del self.subscribers[sid]
            raise
        with self.guard:
            self.sessions[sid] = session
        return session

    def publish(self, sid: str, kind: str, data: str) -> None:
        for sub in list(self.subscribers.get(sid, ())):
            sub.put(kind, data)

    def get(self, sid: str) -> Session:
        session = self.sessions.get(sid)
        if session is None:
            raise Gone("this playground session has ended (the page was closed for a while); reload the page")
        return session

    def reap(self) -> None:
        now = time.monotonic()
        for sid, session in list(self.sessions.items()):
            if session.connections <= 0 and now - session.last_seen > IDLE_SECONDS:
                self.close(sid)

    def close(self, sid: str) -> None:
        with self.guard:
            session = self.sessions.pop(sid, None)
            self.subscribers.pop(sid, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for sid in list(self.sessions):
            self.close(sid)


class TooMany(Exception):
    pass


class Gone(Exception):
    pass
