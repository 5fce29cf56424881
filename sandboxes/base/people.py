"""What every sandbox actor (a customer, an admin, an agent) does to make one API call.

Actors use the platforms' public APIs exactly as any client would; this is the one place that
turns an answer into JSON or into the error tree's exception (redacted), so no httpx exception
leaves an actor and every platform reports failures the same way.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base.http import redact
from schemas.errors import FatalAPIError, RetriableAPIError

__all__ = ["call_json"]


async def call_json(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    what: str,
    body: Any = None,
    *,
    platform: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One request; the JSON object answered, or RetriableAPIError / FatalAPIError."""
    try:
        response = await http.request(method, path, json=body, headers=headers)
    except httpx.TransportError as exc:
        raise RetriableAPIError(f"{platform} {what} failed: {type(exc).__name__}") from exc
    if response.is_success:
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {"data": data}
    status = response.status_code
    message = f"{platform} {what} answered {status}: {redact(response.text, 300)}"
    if status == 429 or status >= 500:
        raise RetriableAPIError(message, status=status)
    raise FatalAPIError(message, status=status)
