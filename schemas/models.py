"""Python types for the canonical Avro records; the ``.avsc`` files remain the source of truth.

One frozen pydantic model per named Avro record, one ``StrEnum`` per Avro enum, fields in the
schema's order. ``tests/schemas/test_models.py`` walks every model against its ``.avsc`` (names,
order, types, optionality, defaults, enum symbols), so the two cannot drift apart silently.

Every record model carries its Avro full name in ``avro_name``: the codec uses it to pick the
exact branch of a union (``Envelope.data`` is Contact | Case | Message | Handoff) instead of
letting the Avro library guess from the shape of a dict. The eight messages that travel on a
topic on their own are listed in ``TOP_LEVEL_MODELS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "TOP_LEVEL_MODELS",
    "Actor",
    "ActorKind",
    "Attachment",
    "AuditRecord",
    "AvroRecord",
    "Case",
    "CaseStatus",
    "CommandAction",
    "Contact",
    "CustomValue",
    "DeadLetter",
    "EntityData",
    "EntityRef",
    "EntityType",
    "Envelope",
    "Handoff",
    "Int32",
    "Int64",
    "Message",
    "Op",
    "Platform",
    "Priority",
    "QuarantineRecord",
    "RawDelivery",
    "Source",
    "SyncCommand",
    "Timer",
    "Timestamp",
    "TopLevelModel",
    "TranscriptLine",
    "WriteOutcome",
    "WriteResult",
]


def _to_utc(value: datetime) -> datetime:
    # Avro timestamp-micros carries no zone; normalising here makes a round trip equal.
    return value.astimezone(UTC)


#: Avro ``long`` + ``timestamp-micros``: any aware datetime, stored as UTC.
Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
#: Avro ``int`` and ``long``: Python ints are unbounded, Avro's are not, so refuse early and
#: with the field's name rather than fail later inside the encoder.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: A platform custom field or attribute value: Avro ``["null","boolean","long","double","string"]``.
CustomValue = bool | Int64 | float | str | None


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Platform(StrEnum):
    GENERIC = "generic"
    ZENDESK = "zendesk"
    ZENDESK_CONVERSATIONS = "zendesk_conversations"
    INTERCOM = "intercom"
    SALESFORCE = "salesforce"
    AI_AGENT = "ai_agent"


class EntityType(StrEnum):
    CONTACT = "contact"
    CASE = "case"
    MESSAGE = "message"
    HANDOFF = "handoff"


class ActorKind(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    AI = "ai"
    INTEGRATION = "integration"
    SYSTEM = "system"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class CommandAction(StrEnum):
    UPSERT = "upsert"
    APPEND = "append"
    UPDATE = "update"
    DELETE = "delete"
    HANDOFF = "handoff"


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


class AvroRecord(BaseModel):
    """Base of every record model: immutable, and unknown fields are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The Avro full name of the record this model mirrors.
    avro_name: ClassVar[str]


class Actor(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Actor"

    kind: ActorKind
    id: str | None = None
    email: str | None = None
    name: str | None = None


class Source(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Source"

    platform: Platform
    connector_id: str
    entity_type: EntityType
    entity_id: str
    event_type: str
    source_event_id: str | None = None
    source_version: str | None = None
    actor: Actor
    occurred_at: Timestamp
    #: read by a backfill (Debezium's ``source.snapshot``); after v1
    snapshot: bool = False


class Contact(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Contact"

    emails: list[str] = Field(default_factory=list)
    external_id: str | None = None
    name: str | None = None
    phone: str | None = None
    company: str | None = None
    plan: str | None = None
    custom_attributes: dict[str, CustomValue] = Field(default_factory=dict)


class Case(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Case"

    subject: str | None = None
    status: CaseStatus
    priority: Priority | None = None
    tags: list[str] = Field(default_factory=list)
    requester: Actor | None = None
    assignee: Actor | None = None
    custom_fields: dict[str, CustomValue] = Field(default_factory=dict)
    channel: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Attachment(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Attachment"

    name: str
    content_type: str
    size_bytes: Int64 | None = None
    source_url: str
    sha256: str | None = None


class Message(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Message"

    case_id: str
    author: Actor
    body_text: str | None = None
    body_html: str | None = None
    public: bool
    created_at: Timestamp
    attachments: list[Attachment] = Field(default_factory=list)


class TranscriptLine(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.TranscriptLine"

    author: Actor
    text: str
    at: Timestamp


class Handoff(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Handoff"

    case_id: str
    reason: str
    sentiment: str | None = None
    intent: str | None = None
    summary: str | None = None
    collected_fields: dict[str, str] = Field(default_factory=dict)
    transcript: list[TranscriptLine] = Field(default_factory=list)
    target: str | None = None
    customer: Contact | None = None
    segment: str | None = None
    client_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


#: The canonical state carried by an event or a command; None for deletes.
EntityData = Contact | Case | Message | Handoff | None


class Envelope(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.Envelope"

    event_id: str
    source: Source
    op: Op
    changed_fields: list[str] = Field(default_factory=list)
    data: EntityData = None
    link_id: str | None = None
    ingested_at: Timestamp

    @model_validator(mode="after")
    def _handoff_data_is_a_handoff_event(self) -> Envelope:
        # Readers may rely on it without reading ``data``: ``source.entity_type`` sits near
        # the front of the message, the data's union branch after the changed fields (the
        # chat relay reads only the front of the events it does not relay). Only hand-offs
        # are bound: a conversation's messages are events of the conversation, a case
        # (Zendesk Conversations).
        data = self.data
        if data is not None and (type(data) is Handoff) != (
            self.source.entity_type is EntityType.HANDOFF
        ):
            raise ValueError(
                f"data is a {type(data).__name__} but source.entity_type is "
                f"{self.source.entity_type.value!r}; a hand-off's data is a Handoff and its "
                f"entity type 'handoff', each with the other only; fix the event's producer"
            )
        return self


class RawDelivery(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.RawDelivery"

    delivery_id: str
    connector_id: str
    platform: Platform
    received_at: Timestamp
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes
    content_type: str | None = None
    signature_verified: bool


class QuarantineRecord(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.QuarantineRecord"

    delivery: RawDelivery
    reason: str
    stage: str
    quarantined_at: Timestamp


class EntityRef(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.EntityRef"

    platform: Platform
    connector_id: str
    entity_type: EntityType
    entity_id: str | None = None


class SyncCommand(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.SyncCommand"

    command_id: str
    link_id: str
    target: EntityRef
    action: CommandAction
    idempotency_key: str
    caused_by_event_id: str
    changed_fields: list[str] = Field(default_factory=list)
    data: EntityData = None
    issued_at: Timestamp
    attempt: Int32 = 1
    #: for creates: the full history, oldest first (added after v1; old readers ignore it)
    thread: list[Message] = Field(default_factory=list)
    #: the customer, for identity resolution on the target
    contact: Contact | None = None
    #: target-specific instructions from the rules (group_id, tags_added, ...)
    options: dict[str, str] = Field(default_factory=dict)
    #: when the causing change reached Deskstream (webhook received); after v1
    caused_at: Timestamp | None = None
    #: caused by a backfill's read: live commands go first in the sink; after v1
    backfill: bool = False


class WriteResult(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.WriteResult"

    command_id: str
    link_id: str
    target: EntityRef
    outcome: WriteOutcome
    target_entity_id: str | None = None
    status_code: Int32 | None = None
    latency_ms: float
    fingerprints: list[str] = Field(default_factory=list)
    error: str | None = None
    written_at: Timestamp
    #: ids the platform gave to parts of the write ("thread:<i>" / "message" → id); after v1
    created_ids: dict[str, str] = Field(default_factory=dict)
    #: API calls the write cost, lookups included; after v1
    api_calls: Int32 = 0
    #: changed fields the sink left out on purpose (no agent for an owner); after v1
    skipped_fields: list[str] = Field(default_factory=list)


class DeadLetter(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.DeadLetter"

    command: SyncCommand
    error_kind: str
    error_message: str
    status_code: Int32 | None = None
    attempts: Int32
    first_failed_at: Timestamp
    last_failed_at: Timestamp


class AuditRecord(AvroRecord):
    avro_name: ClassVar[str] = "deskstream.AuditRecord"

    audit_id: str
    link_id: str | None = None
    at: Timestamp
    stage: str
    decision: str
    reason: str
    event_id: str | None = None
    command_id: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class Timer(AvroRecord):
    """A decision taken again later (``streams.timers``): added after v1, read only by
    Deskstream's own agents (``deskstream.timers``, then ``deskstream.sync``)."""

    avro_name: ClassVar[str] = "deskstream.Timer"

    timer_id: str
    link_id: str
    purpose: str
    subject: str = ""
    due_at: Timestamp
    set_at: Timestamp
    caused_by_event_id: str | None = None


#: The messages that travel on a topic on their own (each has its own fingerprint).
TopLevelModel = (
    Envelope
    | RawDelivery
    | QuarantineRecord
    | SyncCommand
    | WriteResult
    | DeadLetter
    | AuditRecord
    | Timer
)
TOP_LEVEL_MODELS: tuple[type[AvroRecord], ...] = (
    Envelope,
    RawDelivery,
    QuarantineRecord,
    SyncCommand,
    WriteResult,
    DeadLetter,
    AuditRecord,
    Timer,
)
