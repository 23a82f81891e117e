"""Request body cap (ASGI middleware) and the inference concurrency gate of the service."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from restorekit.serve.errors import BodyTooLarge, error_body


class BodyLimitMiddleware:
    """Pure ASGI middleware refusing bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is answered at once from the
    header, without reading the body, and the connection is closed; a streamed
    (chunked) body raises :class:`BodyTooLarge` as soon as it passes the limit
    (the error map answers 413).
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_bytes:
            await self._reply_413(send, declared)
            return
        seen = 0
        limit = self.max_bytes

        async def capped_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, capped_receive, send)

    async def _reply_413(self, send: Callable, declared: int) -> None:
        body = json.dumps(
            error_body(413, "body_too_large", f"{declared:,} bytes exceeds the request body limit of {self.max_bytes:,} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class InferenceGate:
    """Bounds concurrent inferences to ``slots``; at most ``max_queue`` requests wait, each up to ``timeout_s``."""

    def __init__(self, slots: int, max_queue: int, timeout_s: float) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.running = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    @property
    def sem(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        return self._sem

    async def acquire(self) -> bool:
        """Take a slot; False when the queue is full or the wait timed out."""
        if not self.sem.locked():
            await self.sem.acquire()
            self.running += 1
            return True
        if self.waiting >= self.max_queue or self.timeout_s <= 0:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self.sem.acquire(), self.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            return False
        finally:
            self.waiting -= 1
        self.running += 1
        return True

    def release(self) -> None:
        self.running -= 1
        self.sem.release()
