"""Fixed, fully populated examples of every top-level message: golden bytes, Java, docs.

Every optional field is set, every array and map is non-empty, every branch of every union
(each ``data`` record, each custom-value kind) appears at least once, and the text includes
non-ASCII characters, so a change to any part of a schema or of the encoding shows up in the
golden bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.models import (
    Actor,
    ActorKind,
    Attachment,
    AuditRecord,
    AvroRecord,
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    DeadLetter,
    EntityRef,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Op,
    Platform,
    Priority,
    QuarantineRecord,
    RawDelivery,
    Source,
    SyncCommand,
    Timer,
    TranscriptLine,
    WriteOutcome,
    WriteResult,
)

__all__ = ["EXAMPLES", "contact_with_custom_value"]

T0 = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="361", email="zoe@example.com", name="Zoë Agent")
CUSTOMER = Actor(kind=ActorKind.CUSTOMER, id="c-77", email="ana@example.org", name="Ana Núñez")
AI = Actor(kind=ActorKind.AI, id="fin", email=None, name="Fin")

CONTACT = Contact(
    emails=["ana@example.org", "ana.nunez@example.com"],
    external_id="crm-0042",
    name="Ana Núñez",
    phone="+34 600 000 000",
    company="Acme S.L.",
    plan="enterprise",
    custom_attributes={
        "vip": True,
        "seats": 250,
        "nps": 9.5,
        "region": "EMEA",
        "churn_risk": None,
    },
)
CASE = Case(
    subject="Can't log in ✓",
    status=CaseStatus.ON_HOLD,
    priority=Priority.URGENT,
    tags=["login", "escalate"],
    requester=CUSTOMER,
    assignee=AGENT,
    custom_fields={"360012": "billing", "360013": 3, "360014": False, "360015": 0.25},
    channel="email",
    created_at=T0 - timedelta(days=1),
    updated_at=T0,
)
MESSAGE = Message(
    case_id="12345",
    author=AGENT,
    body_text="Hi Ana,\nplease try again.",
    body_html="<p>Hi Ana,<br>please try again.</p>",
    public=False,
    created_at=T0,
    attachments=[
        Attachment(
            name="screenshot.png",
            content_type="image/png",
            size_bytes=48213,
            source_url="https://acme.zendesk.com/attachments/token/abc/?name=screenshot.png",
            sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
    ],
)
HANDOFF = Handoff(
    case_id="conv-215",
    reason="customer asked for a human",
    sentiment="frustrated",
    intent="account_access",
    summary="Locked out after the password reset; tried twice.",
    collected_fields={"account_email": "ana@example.org", "order": "A-1001"},
    transcript=[
        TranscriptLine(author=CUSTOMER, text="I can't get in", at=T0 - timedelta(minutes=2)),
        TranscriptLine(author=AI, text="Let me get you a human.", at=T0 - timedelta(minutes=1)),
    ],
)


def _envelope(data: Contact | Case | Message | Handoff | None, entity_type: EntityType) -> Envelope:
    return Envelope(
        event_id="evt-8c4bd1f0",
        source=Source(
            platform=Platform.ZENDESK,
            connector_id="zendesk-main",
            entity_type=entity_type,
            entity_id="12345",
            event_type="zen:event-type:ticket.status_changed",
            source_event_id="01HQ8Z6W3T",
            source_version="2025-03-14T15:09:26Z",
            actor=AGENT,
            occurred_at=T0,
        ),
        op=Op.DELETE if data is None else Op.UPDATE,
        changed_fields=["status", "priority"],
        data=data,
        link_id="link-5f1e",
        ingested_at=T0 + timedelta(milliseconds=12),
    )


TARGET = EntityRef(
    platform=Platform.SALESFORCE,
    connector_id="sf-prod",
    entity_type=EntityType.CASE,
    entity_id="5003t00002AbCdE",
)
COMMAND = SyncCommand(
    command_id="cmd-91c2",
    link_id="link-5f1e",
    target=TARGET,
    action=CommandAction.HANDOFF,
    idempotency_key="idem-91c2",
    caused_by_event_id="evt-8c4bd1f0",
    changed_fields=["summary"],
    data=HANDOFF,
    issued_at=T0,
    attempt=3,
)
#: A create with the fields added after v1: the full thread, the customer, rule options.
CREATE_COMMAND = SyncCommand(
    command_id="cmd-a001",
    link_id="lnk_0f4e",
    target=EntityRef(
        platform=Platform.ZENDESK,
        connector_id="zd-main",
        entity_type=EntityType.CASE,
        entity_id=None,
    ),
    action=CommandAction.UPSERT,
    idempotency_key="lnk_0f4e:create",
    caused_by_event_id="evt-8c4bd1f0",
    changed_fields=["subject", "status", "priority", "tags"],
    data=CASE,
    issued_at=T0,
    thread=[MESSAGE, MESSAGE],
    contact=CONTACT,
    options={"group_id": "360001", "tags_added": '["vip"]'},
    caused_at=T0,
)
DELIVERY = RawDelivery(
    delivery_id="dlv-7d2a",
    connector_id="intercom-eu",
    platform=Platform.INTERCOM,
    received_at=T0,
    headers={"x-intercom-webhook-id": "wh-1", "content-type": "application/json"},
    # Not valid UTF-8 on purpose: the body is bytes, byte for byte.
    body=b'{"type":"notification_event","data":{}}\x00\xff\xc3',
    content_type="application/json",
    signature_verified=True,
)

#: label -> example. Labels are the golden-file keys and the test ids.
EXAMPLES: dict[str, AvroRecord] = {
    "Envelope-case": _envelope(CASE, EntityType.CASE),
    "Envelope-contact": _envelope(CONTACT, EntityType.CONTACT),
    "Envelope-message": _envelope(MESSAGE, EntityType.MESSAGE),
    "Envelope-handoff": _envelope(HANDOFF, EntityType.HANDOFF),
    "Envelope-delete": _envelope(None, EntityType.CASE),
    "RawDelivery": DELIVERY,
    "QuarantineRecord": QuarantineRecord(
        delivery=DELIVERY,
        reason="body is not JSON: fix the sender or replay after a normalizer fix",
        stage="normalize",
        quarantined_at=T0,
    ),
    "SyncCommand": COMMAND,
    "SyncCommand-create": CREATE_COMMAND,
    "WriteResult": WriteResult(
        command_id="cmd-91c2",
        link_id="link-5f1e",
        target=TARGET,
        outcome=WriteOutcome.WRITTEN,
        target_entity_id="5003t00002AbCdE",
        status_code=201,
        latency_ms=87.25,
        fingerprints=["sf|5003t00002AbCdE|status|4f2a"],
        error="none",
        written_at=T0,
        created_ids={"thread:0": "9001", "thread:1": "9002"},
        api_calls=4,
        skipped_fields=["assignee"],
    ),
    "DeadLetter": DeadLetter(
        command=COMMAND,
        error_kind="fatal_api",
        error_message="422 INVALID_FIELD: Status 'On Hold' is not a picklist value",
        status_code=422,
        attempts=5,
        first_failed_at=T0,
        last_failed_at=T0 + timedelta(minutes=5),
    ),
    "AuditRecord": AuditRecord(
        audit_id="aud-33",
        link_id="link-5f1e",
        at=T0,
        stage="echo",
        decision="suppressed_echo",
        reason="actor is our Zendesk integration user",
        event_id="evt-8c4bd1f0",
        command_id="cmd-91c2",
        details={"layer": "actor", "actor_id": "361"},
    ),
    "Timer": Timer(
        timer_id="tmr-4b07",
        link_id="link-5f1e",
        purpose="contact_hold",
        subject="salesforce",
        due_at=T0 + timedelta(minutes=3),
        set_at=T0,
        caused_by_event_id="evt-8c4bd1f0",
    ),
}


def contact_with_custom_value(value: object) -> Envelope:
    """The contact example with one custom attribute, ``v``, holding ``value``."""
    example = EXAMPLES["Envelope-contact"]
    assert isinstance(example, Envelope)
    assert isinstance(example.data, Contact)
    data = example.data.model_copy(update={"custom_attributes": {"v": value}})
    return example.model_copy(update={"data": data})
