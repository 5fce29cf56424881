"""A small client of the Confluent Schema Registry REST API (Confluent, Apicurio's ccompat,
Karapace, Redpanda): the calls a worker makes at start-up, and one to fetch a schema by id.

Synchronous on purpose: it runs before the worker's event loop exists (start-up), and, after
that, only for a schema id this process has never seen (``schemas.schema_ids``).

Every failure is a ``SchemaRegistryError`` naming the call, the status and the registry's own
message. The URL is shown without its user info and the password never appears.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from schemas.errors import SchemaRegistryError

__all__ = ["Compatibility", "RegistryClient", "safe_url"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def safe_url(url: str) -> str:
    """``url`` without user info (``https://key:secret@host`` is how some people pass auth)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The registry's verdict on a schema for a subject (``messages`` say why not)."""

    compatible: bool
    messages: tuple[str, ...] = ()


class RegistryClient:
    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = safe_url(url).rstrip("/")
        auth = httpx.BasicAuth(user, password or "") if user else None
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/",
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the API calls -------------------------------------------------------------------

    def subject_level(self, subject: str) -> str | None:
        """The subject's own compatibility rule; None when it has none (the global applies)."""
        answer = self._call("GET", f"config/{_path(subject)}", absent_ok=True)
        if answer is None:
            return None
        level = answer.get("compatibilityLevel") or answer.get("compatibility")
        return str(level) if level else None

    def set_level(self, subject: str, level: str) -> None:
        self._call("PUT", f"config/{_path(subject)}", {"compatibility": level})

    def check(self, subject: str, schema: str) -> Compatibility | None:
        """``schema`` against the subject's rule and versions; None when the subject has none."""
        answer = self._call(
            "POST",
            f"compatibility/subjects/{_path(subject)}/versions/latest",
            {"schema": schema},
            params={"verbose": "true"},
            absent_ok=True,
        )
        if answer is None:
            return None
        messages = answer.get("messages") or []
        return Compatibility(bool(answer.get("is_compatible")), tuple(str(m) for m in messages))

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` (a no-op when it is there); its id."""
        return _id(self._call("POST", f"subjects/{_path(subject)}/versions", {"schema": schema}))

    def lookup(self, subject: str, schema: str) -> int | None:
        """The id of ``schema`` if it is registered under ``subject``, else None."""
        answer = self._call(
            "POST", f"subjects/{_path(subject)}", {"schema": schema}, absent_ok=True
        )
        return None if answer is None else _id(answer)

    def versions(self, subject: str) -> list[int]:
        answer = self._call("GET", f"subjects/{_path(subject)}/versions", absent_ok=True)
        return [] if answer is None else [int(v) for v in answer]

    def version(self, subject: str, version: int | str) -> tuple[int, str]:
        """(id, schema text) of one version of a subject (or of ``"latest"``)."""
        answer = self._call("GET", f"subjects/{_path(subject)}/versions/{version}")
        return _id(answer), str(answer["schema"])

    def schema_text(self, schema_id: int) -> str:
        """The schema an id names (``GET /schemas/ids/{id}``)."""
        return str(self._call("GET", f"schemas/ids/{schema_id}")["schema"])

    # -- plumbing ------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        absent_ok: bool = False,
    ) -> Any:
        what = f"{method} {self.url}/{path}"
        try:
            response = self._http.request(
                method, path, content=None if body is None else json.dumps(body), params=params
            )
        except httpx.HTTPError as exc:
            raise SchemaRegistryError(
                f"the schema registry did not answer {what} ({type(exc).__name__}: {exc}); "
                "check that it runs and that DESKSTREAM_SCHEMA_REGISTRY_URL points at it"
            ) from None
        if response.status_code == 404 and absent_ok:
            code = _error_code(response)
            # Confluent's 4040x codes: no such subject (40401), version (40402), subject
            # config (40408). A 404 without one means the URL is not a Confluent-API registry.
            if code is not None and 40400 <= code < 40500:
                return None
        if response.status_code >= 400:
            raise SchemaRegistryError(
                f"the schema registry answered {what} with {response.status_code}"
                f"{_hint(response.status_code)}: {_message(response)}",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise SchemaRegistryError(
                f"the schema registry answered {what} with something that is not JSON "
                f"({response.text[:200]!r}); is DESKSTREAM_SCHEMA_REGISTRY_URL the registry's "
                "Confluent-compatible API (Apicurio: <url>/apis/ccompat/v7)?"
            ) from None


def _path(subject: str) -> str:
    return quote(subject, safe="")


def _id(answer: Any) -> int:
    try:
        return int(answer["id"])
    except (KeyError, TypeError, ValueError):
        raise SchemaRegistryError(
            f"the schema registry answered without a schema id: {str(answer)[:200]}"
        ) from None


def _error_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("error_code")
    except (ValueError, AttributeError):
        return None
    return int(code) if isinstance(code, int) else None


def _message(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.text[:300] or "(no body)"
    if isinstance(answer, dict) and "message" in answer:
        return str(answer["message"])[:1000]
    return str(answer)[:300]


def _hint(status: int) -> str:
    if status in (401, 403):
        return (
            " (set DESKSTREAM_SCHEMA_REGISTRY_USER and DESKSTREAM_SCHEMA_REGISTRY_PASSWORD"
            "[_FILE] to credentials that may do this)"
        )
    return ""
