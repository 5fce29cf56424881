"""A minimal real platform for exercising the sandbox base: ``POST /notes`` stores a note and
emits a webhook whose body is the note; errors use a recognisable JSON shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandboxes.base import PlatformSandbox, RetryPolicy

__all__ = ["MemosSandbox", "NotesSandbox"]


class NotesSandbox(PlatformSandbox):
    platform = "notes"
    webhook_retry_policy = RetryPolicy(max_attempts=3, backoff_initial_s=0.5)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.notes: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/notes", self.add), web.get("/notes", self.list)]

    async def add(self, request: web.Request) -> web.Response:
        text = (await request.json())["text"]
        self.notes.append(text)
        if self.context.webhooks is not None:
            body = json.dumps({"note": text, "n": len(self.notes)}).encode()
            await self.context.webhooks.emit(body, {"Content-Type": "application/json"})
        return web.json_response({"n": len(self.notes)}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"notes": self.notes})

    def reset(self) -> None:
        self.notes.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"notes": list(self.notes)}

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        return web.json_response({"notes_error": code, "message": message}, status=status)

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        return web.json_response(
            {"notes_error": "slow_down"}, status=429, headers={"Retry-After": str(retry_after)}
        )


class MemosSandbox(NotesSandbox):
    platform = "memos"
