"""A person working cases in the Salesforce Service Console, through the public REST API.

:class:`SalesforceConsoleUser` signs in with the OAuth refresh-token flow on the org's token
endpoint, then creates Contacts and Cases, comments (``CaseComment``) and moves a Case
through its statuses. It never sends ``Sforce-Call-Options: client=...``: that header is how
an integration tags its *own* writes, and a person's writes must not look like Deskstream's.
An expired session (401 ``INVALID_SESSION_ID``) signs in again once and repeats the call.

The injected :class:`httpx.AsyncClient` carries only the instance URL
(:func:`salesforce_http`); the access token is the actor's own. Failures surface as
:class:`~schemas.errors.RetriableAPIError` (5xx, ``REQUEST_LIMIT_EXCEEDED``, transport) or
:class:`~schemas.errors.FatalAPIError` with redacted messages.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.base.http import redact
from connectors.salesforce.soql_text import string_literal
from schemas.errors import FatalAPIError, RetriableAPIError

__all__ = ["SalesforceConsoleUser", "salesforce_http"]


def salesforce_http(
    base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": "application/json"},
        transport=transport,
        timeout=timeout,
    )


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    status = response.status_code
    message = f"salesforce {what} answered {status}: {redact(response.text, 300)}"
    # Salesforce throttles with 403 REQUEST_LIMIT_EXCEEDED, never 429.
    if status >= 500 or status == 429 or "REQUEST_LIMIT_EXCEEDED" in response.text:
        raise RetriableAPIError(message, status=status)
    raise FatalAPIError(message, status=status)


class SalesforceConsoleUser:
    """A console user with a refresh token of the org's connected app."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        consumer_key: str,
        refresh_token: str,
        consumer_secret: str | None = None,
        api_version: str = "59.0",
    ) -> None:
        self.http = http
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.refresh_token = refresh_token
        self.api = f"/services/data/v{api_version}"
        self.user_id: str | None = None
        self._token: str | None = None
        self._signing_in = asyncio.Lock()

    async def sign_in(self, *, stale: str | None = None) -> str:
        """An access token; a new one when the current one is ``stale``."""
        async with self._signing_in:  # one sign-in for every waiting request
            if self._token is not None and self._token != stale:
                return self._token
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": self.consumer_key,
            }
            if self.consumer_secret:
                form["client_secret"] = self.consumer_secret
            try:
                response = await self.http.post("/services/oauth2/token", data=form)
            except httpx.TransportError as exc:
                raise RetriableAPIError(f"salesforce sign-in failed: {type(exc).__name__}") from exc
            _raise_for(response, "sign-in")
            grant = response.json()
            self._token = str(grant["access_token"])
            self.user_id = str(grant["id"]).rstrip("/").rsplit("/", 1)[-1]
            return self._token

    async def _call(self, method: str, path: str, what: str, body: Any = None) -> Any:
        token = await self.sign_in()
        for attempt in (1, 2):
            try:
                response = await self.http.request(
                    method,
                    f"{self.api}{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as exc:
                raise RetriableAPIError(f"salesforce {what} failed: {type(exc).__name__}") from exc
            if response.status_code == 401 and attempt == 1:
                token = await self.sign_in(stale=token)  # the session timed out
                continue
            _raise_for(response, what)
            return response.json() if response.content else None
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        created = await self._call("POST", f"/sobjects/{sobject}", f"{sobject} create", fields)
        return str(created["id"])

    async def create_contact(
        self, *, first_name: str, last_name: str, email: str, phone: str | None = None
    ) -> str:
        fields = {"FirstName": first_name, "LastName": last_name, "Email": email}
        if phone:
            fields["Phone"] = phone
        return await self._create("Contact", fields)

    async def create_case(
        self,
        *,
        contact_id: str,
        subject: str,
        description: str,
        origin: str = "Phone",
        priority: str = "Medium",
    ) -> str:
        """A new Case for the Contact; returns its id."""
        fields = {
            "ContactId": contact_id,
            "Subject": subject,
            "Description": description,
            "Origin": origin,
            "Priority": priority,
        }
        return await self._create("Case", fields)

    async def comment(self, case_id: str, body: str, *, published: bool = True) -> str:
        """A ``CaseComment`` (``published`` = visible to the customer); returns its id.

        CaseComment publishes no change event (it is not on Salesforce's "Change Event Object
        Support" list), so the comment reaches a sync only by polling.
        """
        fields = {"ParentId": case_id, "CommentBody": body, "IsPublished": published}
        return await self._create("CaseComment", fields)

    async def set_status(self, case_id: str, status: str) -> None:
        """``New``, ``Working``, ``Escalated`` or ``Closed``."""
        await self._call("PATCH", f"/sobjects/Case/{case_id}", "Case update", {"Status": status})

    async def set_owner(self, case_id: str, owner_id: str) -> None:
        """Give the Case to a user (``005...``) or a queue (``00G...``)."""
        await self._call("PATCH", f"/sobjects/Case/{case_id}", "Case update", {"OwnerId": owner_id})

    async def user_for(self, email: str) -> str:
        """The id of the active user with ``email`` (as a person finds a colleague)."""
        users = await self.query(
            f"SELECT Id FROM User WHERE Email = {string_literal(email)} AND IsActive = true"  # noqa: S608
        )
        if not users:
            raise FatalAPIError(f"salesforce has no active user with the email {email}")
        return str(users[0]["Id"])

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record a SOQL query selects (``nextRecordsUrl`` pages followed)."""
        page = await self._call("GET", f"/query?{urlencode({'q': soql})}", "query")
        records: list[dict[str, Any]] = list(page["records"])
        while not page.get("done", True):
            path = str(page["nextRecordsUrl"]).removeprefix(self.api)
            page = await self._call("GET", path, "query page")
            records += page["records"]
        return records

    async def case(self, case_id: str) -> dict[str, Any]:
        record = await self._call("GET", f"/sobjects/Case/{case_id}", "Case show")
        assert isinstance(record, dict)
        return record
