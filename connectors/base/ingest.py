"""The webhook side of a connector: authenticate a delivery and say how to key it.

The worker's ``POST /webhooks/{connector_id}`` view owns HTTP (size limit, status codes, the
write to Kafka); a connector owns only what differs per platform:

- ``check_signature``: the platform's signature check against one secret. Raise
  ``SignatureError`` and nothing is stored. ``verify`` tries every secret the connector
  accepts right now (two during a rotation's grace period), so a platform may sign with the
  old or the new one while the operator switches.
- ``delivery_id``: a deterministic id for this delivery, the same when the platform redelivers
  it, so everything downstream (event ids, dedupe) is idempotent.
- ``partition_key``: the source entity the delivery is about, so all deliveries for one
  ticket or conversation land in one partition, in order. Best effort: it must never raise,
  because an authenticated delivery is stored even when its body is unreadable (normalize
  quarantines it later with the reason).
- ``kept_headers``: the headers worth keeping in the raw record (never credentials).

Headers arrive as aiohttp decoded them: bytes that are not UTF-8 become lone surrogates
(``surrogateescape``), which no Avro record can carry. ``decode_headers`` turns them back into
text once, at the boundary, and names the headers it repaired.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import SecretStr

from schemas.errors import ConfigurationError, SignatureError
from schemas.text import is_safe_text, safe_text

__all__ = [
    "MAX_KEPT_HEADER_CHARS",
    "REPAIRED_HEADER",
    "IngestConnector",
    "WebhookRequest",
    "decode_headers",
]

#: A kept header longer than this is cut: it bounds what a raw record adds to its body, so a
#: body under the size limit always fits the producer's message size.
MAX_KEPT_HEADER_CHARS = 1024
#: Added to the kept headers when a header was repaired: which ones, and how.
REPAIRED_HEADER = "deskstream-repaired-headers"


def _decode_value(value: str) -> tuple[str, str | None]:
    """(text, how it was repaired or None): non-UTF-8 bytes are read as Latin-1, which is
    what HTTP's obs-text historically was, and keeps every byte recoverable."""
    if is_safe_text(value):
        return value, None
    try:
        return value.encode("utf-8", "surrogateescape").decode("latin-1"), "latin-1"
    except UnicodeEncodeError:  # a surrogate that no byte produced
        return safe_text(value), "replaced"


def decode_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Lower-case names and values every encoder can carry, and ``name:how`` for each
    header that was not valid UTF-8."""
    decoded: dict[str, str] = {}
    repaired: list[str] = []
    for name, value in headers.items():
        key, key_how = _decode_value(name.lower())
        text, how = _decode_value(value)
        decoded[key] = text
        if how or key_how:
            repaired.append(f"{key}:{how or key_how}")
    return decoded, tuple(repaired)


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One delivery as it arrived. ``headers`` keys are lower-case; ``repaired_headers``
    names those whose bytes were not UTF-8 (see ``decode_headers``)."""

    connector_id: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    repaired_headers: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class IngestConnector(abc.ABC):
    """Per-platform webhook authentication and keying. Subclasses are small and pure."""

    platform: ClassVar[str]
    kept_headers: ClassVar[frozenset[str]] = frozenset({"content-type", "user-agent"})
    #: where the operator finds the signing secret, for the "no secret" message
    setup_hint: ClassVar[str] = ""
    #: how old a signed timestamp may be, for schemes that sign one (None: no timestamp)
    default_signature_window: ClassVar[timedelta | None] = None

    def __init__(
        self,
        *,
        connector_id: str,
        secret: SecretStr | None,
        signature_window: timedelta | None = None,
    ) -> None:
        self.connector_id = connector_id
        self._secrets: tuple[SecretStr, ...] = () if secret is None else (secret,)
        self._signature_window = signature_window

    @property
    def signature_window(self) -> timedelta:
        """The configured window, else the platform's default."""
        window = self._signature_window or self.default_signature_window
        if window is None:
            raise TypeError(f"{type(self).__name__} signs no timestamp; it has no window")
        return window

    def verify(self, request: WebhookRequest, secrets: Sequence[SecretStr] | None = None) -> None:
        """Raise ``SignatureError`` unless the delivery is authentic and fresh under one of
        ``secrets`` (the connector's own when None); ``ConfigurationError`` without any."""
        accepted = self._secrets if secrets is None else tuple(secrets)
        if not accepted:
            raise ConfigurationError(
                f"connector {self.connector_id!r} has no secret to check webhook signatures; set "
                f"DESKSTREAM_CONNECTORS__{self.connector_id}__SECRET_FILE (or __SECRET)"
                f"{self.setup_hint}. Deliveries are answered 503 until then, so the platform "
                "keeps and retries them"
            )
        refusal: SignatureError | None = None
        for secret in accepted:
            try:
                self.check_signature(request, secret.get_secret_value())
            except SignatureError as exc:
                refusal = refusal or exc  # the newest secret's reason is the one to report
            else:
                return
        assert refusal is not None
        raise refusal

    @abc.abstractmethod
    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        """Raise ``SignatureError`` unless the delivery is authentic and fresh under ``secret``."""

    def delivery_id(self, request: WebhookRequest) -> str:
        """The platform's delivery id when it sends one; else a hash of the body."""
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    @abc.abstractmethod
    def partition_key(self, request: WebhookRequest) -> str:
        """The source entity the delivery is about; never raises."""

    def kept(self, request: WebhookRequest) -> dict[str, str]:
        kept = {
            k: v[:MAX_KEPT_HEADER_CHARS]
            for k, v in request.headers.items()
            if k in self.kept_headers
        }
        if request.repaired_headers:
            kept[REPAIRED_HEADER] = ",".join(request.repaired_headers)[:MAX_KEPT_HEADER_CHARS]
        return kept
