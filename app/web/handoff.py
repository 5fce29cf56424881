"""``POST /handoff``: HTTP in front of ``app.handoff.HandoffIntake``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
from faust import web

from app.handoff import HandoffIntake
from app.web.webhooks import close_if_unread
from schemas.errors import IngestError

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["register_handoff"]


def register_handoff(bundle: Deskstream, intake: HandoffIntake) -> None:
    @bundle.app.page("/handoff")
    class HandoffView(web.View):
        async def post(self, request: web.Request) -> web.Response:
            received_at = datetime.now(UTC)
            aio: Any = request  # Faust's aiohttp driver passes the aiohttp request itself
            try:
                answer = await intake.receive(
                    aio.headers, aio.content, aio.content_length, received_at
                )
            except IngestError as exc:
                response = self.json({"error": str(exc)}, status=exc.status)
                # Faust's aiohttp driver passes and returns aiohttp's own objects
                close_if_unread(cast(aiohttp.web.StreamResponse, response), aio.content)
                return response
            return self.json(answer)
