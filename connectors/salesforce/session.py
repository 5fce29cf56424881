"""What a Salesforce API call needs: the org's instance URL and a current access token.

A ``TokenSource`` hands out sessions and refreshes them; callers ``invalidate`` a session
that got a 401 so the next ``session()`` fetches a new token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["SalesforceSession", "TokenSource"]


@dataclass(frozen=True, slots=True)
class SalesforceSession:
    #: e.g. https://example.my.salesforce.com (no trailing slash)
    instance_url: str
    access_token: str
    #: the org id (from the token response's `id` URL), used by Pub/Sub's `tenantid` header
    org_id: str


class TokenSource(Protocol):
    async def session(self) -> SalesforceSession:
        """A session whose token is valid now (refreshed ahead of expiry)."""
        ...

    async def invalidate(self, session: SalesforceSession) -> None:
        """Drop ``session`` (it got a 401): the next ``session()`` fetches a new token."""
        ...
