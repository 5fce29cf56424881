"""Uploads and attachments, ticket fields, and the cursor-based incremental ticket export.

Uploads take the raw file as the body (``?filename=``, optional ``&token=`` to add to an
earlier upload); the token is valid for 60 minutes and is consumed when a comment uses it.
Attachment bytes are served back at their ``content_url`` without credentials, as the signed
URLs Zendesk redirects to are.

The incremental export orders tickets by (update time, id), holds back the most recent
minute (the spec: "Data isn't provided for the most recent minute"), includes deleted
tickets with status ``deleted``, and has its own 10 requests/minute limit.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from sandboxes.zendesk.core import ZendeskCore, json_response, origin, principal
from sandboxes.zendesk.errors import (
    ZendeskError,
    bad_request,
    forbidden,
    not_found,
    parameter_missing,
    rate_limited,
)
from sandboxes.zendesk.render import (
    attachment_json,
    ticket_fields_json,
    ticket_json,
)
from sandboxes.zendesk.routes_tickets import both
from sandboxes.zendesk.state import Attachment, Ticket, Upload

__all__ = ["admit_export", "decode_export_cursor", "encode_export_cursor", "misc_routes"]

_CHUNK = 64 * 1024


def _token() -> str:
    # Zendesk tokens are 25 alphanumerics; secrets keeps them unguessable like the real ones.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(25))


def encode_export_cursor(position: tuple[float, int]) -> str:
    raw = f"{position[0]:.6f}||{position[1]}|".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_export_cursor(cursor: str) -> tuple[float, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, rest = base64.urlsafe_b64decode(padded.encode()).decode().partition("||")
        return float(stamp), int(rest.rstrip("|"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("cursor is invalid") from None


def admit_export(core: ZendeskCore, request: web.Request) -> float:
    """An incremental export request: admins only, within the exports' own limit (shared by
    every export of the account); returns the newest time exported (now less the held-back
    minute)."""
    if principal(request).user.role != "admin":
        raise forbidden()
    decision = core.incremental_limiter.hit(str(core.config.account_id))
    if not decision.allowed:
        core.counters["rate_limited_incremental"] += 1
        raise rate_limited(decision.retry_after)
    return core.clock.now().timestamp() - core.config.incremental_export_lag_s


class MiscRoutes:
    def __init__(self, core: ZendeskCore) -> None:
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        return [
            *both("POST", "/api/v2/uploads", self.upload),
            *both("DELETE", r"/api/v2/uploads/{token:[A-Za-z0-9]+}", self.delete_upload),
            *both("GET", r"/api/v2/attachments/{attachment_id:\d+}", self.attachment),
            web.get(r"/attachments/token/{token:[A-Za-z0-9]+}/", self.content),
            *both("GET", "/api/v2/ticket_fields", self.ticket_fields),
            *both("GET", "/api/v2/incremental/tickets/cursor", self.incremental),
        ]

    # -- uploads ---------------------------------------------------------------------------

    async def _read_limited(self, request: web.Request) -> bytes:
        # Read the stream ourselves: aiohttp's 1 MiB client_max_size is far below Zendesk's
        # 50 MB upload limit.
        limit, parts, size = self.core.config.max_upload_bytes, [], 0
        while chunk := await request.content.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ZendeskError(
                    413,
                    {
                        "error": "AttachmentTooLarge",
                        "description": f"File exceeds the {limit // (1024 * 1024)} MB limit",
                    },
                )
            parts.append(chunk)
        return b"".join(parts)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        filename = request.query.get("filename")
        if not filename:
            raise parameter_missing("filename")
        state, now = self.core.state, self.core.clock.now()
        data = await self._read_limited(request)
        token = request.query.get("token")
        upload = state.uploads.get(token) if token else None
        if token and (upload is None or upload.consumed or upload.expires_at <= now):
            raise not_found()
        attachment = Attachment(
            id=state.next_id("attachment"),
            token=_token(),
            file_name=filename,
            content_type=request.headers.get("Content-Type", "application/binary"),
            data=data,
        )
        state.attachments[attachment.id] = attachment
        state.attachments_by_token[attachment.token] = attachment.id
        if upload is None:
            expires = now + timedelta(seconds=self.core.config.upload_token_ttl_s)
            upload = Upload(token=_token(), attachment_ids=[], expires_at=expires)
            state.uploads[upload.token] = upload
        upload.attachment_ids.append(attachment.id)
        here = origin(request)
        return json_response(
            {
                "upload": {
                    "token": upload.token,
                    "expires_at": upload.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "attachment": attachment_json(attachment, origin=here),
                    "attachments": [
                        attachment_json(state.attachments[a], origin=here)
                        for a in upload.attachment_ids
                    ],
                }
            },
            status=201,
        )

    async def delete_upload(self, request: web.Request) -> web.StreamResponse:
        upload = self.core.state.uploads.pop(request.match_info["token"], None)
        if upload is None or upload.consumed:
            raise not_found()
        return web.Response(status=204)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        found = self.core.state.attachments.get(int(request.match_info["attachment_id"]))
        if found is None:
            raise not_found()
        return json_response({"attachment": attachment_json(found, origin=origin(request))})

    async def content(self, request: web.Request) -> web.StreamResponse:
        attachment_id = self.core.state.attachments_by_token.get(request.match_info["token"])
        if attachment_id is None:
            return web.Response(status=404, text="Not Found")
        found = self.core.state.attachments[attachment_id]
        return web.Response(
            body=found.data,
            content_type=found.content_type,
            headers={"Content-Disposition": f'attachment; filename="{found.file_name}"'},
        )

    # -- fields ----------------------------------------------------------------------------

    async def ticket_fields(self, request: web.Request) -> web.StreamResponse:
        fields = ticket_fields_json(
            self.core.config, origin=origin(request), created_at=self.core.admin.created_at
        )
        return json_response(
            {
                "ticket_fields": fields,
                "next_page": None,
                "previous_page": None,
                "count": len(fields),
            }
        )

    # -- incremental export ----------------------------------------------------------------

    async def incremental(self, request: web.Request) -> web.StreamResponse:
        core = self.core
        admit_export(core, request)
        now = core.clock.now().timestamp()
        cursor, start_time = request.query.get("cursor"), request.query.get("start_time")
        if cursor:
            after = decode_export_cursor(cursor)
        elif start_time is not None:
            try:
                start = int(start_time)
            except ValueError:
                raise bad_request("start_time must be a Unix epoch time") from None
            if start > now - core.config.incremental_export_lag_s:
                raise bad_request("Too recent start_time. Use a start_time older than 1 minute")
            after = (start - 1e-6, 2**63)
        else:
            raise parameter_missing("start_time")
        try:
            size = min(
                core.config.incremental_export_page_size,
                int(request.query.get("per_page", core.config.incremental_export_page_size)),
            )
        except ValueError:
            raise bad_request("per_page must be an integer") from None
        horizon = now - core.config.incremental_export_lag_s

        def position(t: Ticket) -> tuple[float, int]:
            return (t.updated_at.timestamp(), t.id)

        ready = sorted(
            (
                t
                for t in core.state.tickets.values()
                if position(t) > after and t.updated_at.timestamp() <= horizon
            ),
            key=position,
        )
        page = ready[: max(1, size)]
        last = position(page[-1]) if page else after
        after_cursor = encode_export_cursor(last)
        here = origin(request)
        body: dict[str, Any] = {
            "tickets": [
                ticket_json(t, origin=here, config=core.config, deleted_status=True) for t in page
            ],
            "after_cursor": after_cursor,
            "after_url": f"{here}/api/v2/incremental/tickets/cursor.json?cursor={after_cursor}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": len(ready) <= len(page),
        }
        return json_response(body)


def misc_routes(core: ZendeskCore) -> list[web.RouteDef]:
    return MiscRoutes(core).routes()
