"""``POST /handoff``: HTTP in front of ``app.handoff.HandoffIntake``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from faust import web

from app.handoff import HandoffIntake
from app.web.webhooks import refusal
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
                # Faust's aiohttp driver takes aiohttp's own responses
                return cast(web.Response, refusal(str(exc), exc.status, aio.content))
            return self.json(answer)
