"""Deskstream's exception tree, grouped by what the caller should do next.

    DeskstreamError                      root: catch this to catch everything of ours
    ├── ConfigurationError               fix the settings or the YAML, then restart
    ├── KafkaStackError                  Kafka (local stack or configured cluster) is
    │                                    unreachable or not in the expected state
    ├── SchemaError                      bytes or a record do not fit the shipped Avro schemas
    │   └── SchemaRegistryError          the schema registry is unreachable or refuses
    │       └── IncompatibleSchemaError  our schema breaks the subject's compatibility rule
    ├── IngestError                      a webhook delivery was refused (carries its HTTP status)
    │   ├── UnknownConnectorError        404: no connector with that id is configured
    │   ├── SignatureError               401: forged or unsigned; nothing is stored
    │   ├── PayloadTooLargeError         413: body over the configured limit
    │   └── BrokerUnavailableError       503: Kafka did not acknowledge; the platform retries
    ├── APIError                         a platform API call failed
    │   ├── RetriableAPIError            429, 5xx, timeouts: try again later
    │   │   └── RateLimitedError         429 with the platform's Retry-After
    │   └── FatalAPIError                other 4xx: retrying will not help; dead-letter it
    └── SkippableRecordError             one record cannot be processed; quarantine it, go on

Messages say what happened and what to do next. They never carry secrets: the connectors
build them through their message builders, which strip tokens and PII.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "DeskstreamError",
    "FatalAPIError",
    "IncompatibleSchemaError",
    "IngestError",
    "KafkaStackError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RetriableAPIError",
    "SchemaError",
    "SchemaRegistryError",
    "SignatureError",
    "SkippableRecordError",
    "UnknownConnectorError",
]


class DeskstreamError(Exception):
    """Root of every error Deskstream raises on purpose."""


class ConfigurationError(DeskstreamError):
    """Settings or mapping configuration are invalid; fix them and restart."""


class KafkaStackError(DeskstreamError):
    """Kafka is unreachable, or the local stack (jars, storage, brokers) is not as expected."""


class SchemaError(DeskstreamError):
    """A message does not match the shipped Avro schemas (unknown fingerprint, corrupt bytes)."""


class SchemaRegistryError(SchemaError):
    """The schema registry did not answer, refused a request or answered nonsense; `status`
    is its HTTP status, None when it did not answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IncompatibleSchemaError(SchemaRegistryError):
    """A schema this release writes breaks the compatibility rule of its registry subject:
    the worker refuses to start rather than write what the topic's readers cannot read."""


class IngestError(DeskstreamError):
    """A webhook delivery was refused; `status` is the HTTP status the platform receives."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UnknownConnectorError(IngestError):
    status = 404


class SignatureError(IngestError):
    status = 401


class PayloadTooLargeError(IngestError):
    status = 413


class BrokerUnavailableError(IngestError):
    status = 503


class APIError(DeskstreamError):
    """A platform API call failed. `status` is the HTTP status, or None for transport errors."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriableAPIError(APIError):
    """Worth retrying with backoff: 5xx, timeouts, connection resets."""


class RateLimitedError(RetriableAPIError):
    """The platform answered 429; wait `retry_after` seconds before the next call.

    `scope` says what is exhausted: "account" (the credential's whole budget: every call waits)
    or "record" (one record's own limit, like Zendesk's 30 updates per ticket per 10 minutes:
    only writes to that record wait).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status: int | None = 429,
        scope: str = "account",
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.scope = scope


class FatalAPIError(APIError):
    """Retrying will not help (validation, permission, not found): dead-letter the command."""


class SkippableRecordError(DeskstreamError):
    """One record cannot be processed; it is quarantined with `reason` and the stream goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
