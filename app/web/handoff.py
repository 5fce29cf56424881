"""``POST /handoff``: HTTP in front of ``app.handoff.HandoffIntake``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
from faust import web

from app.handoff import HandoffIntake
from app.web.webhooks import BODY_LEFT_UNREAD
from schemas.errors import IngestError

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["register_handoff"]

#: an unknown client is refused before its body is read, like a body too large
_UNREAD = BODY_LEFT_UNREAD | {401}


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
                if exc.status in _UNREAD:
                    cast(aiohttp.web.StreamResponse, response).force_close()
                return response
            return self.json(answer)
