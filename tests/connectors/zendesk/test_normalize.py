"""The Zendesk normaliser on payloads shaped as the sandbox (and the reference) sends them:
one row per event type, the irrelevant ones, and the malformed ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base.links import case_link_id, contact_link_id
from connectors.base.normalize import event_id
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.normalize import ZendeskNormaliser
from schemas.errors import SkippableRecordError
from schemas.models import (
    ActorKind,
    Case,
    CaseStatus,
    Contact,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
    RawDelivery,
)

INTEGRATION = "381000000002"
AGENT = "381000000001"
REQUESTER = "381000000003"
LINK = "lnk_" + "0" * 32
RECEIVED = datetime(2025, 1, 8, 14, 25, 31, tzinfo=UTC)


def normaliser(service_account_id: str | None = INTEGRATION) -> ZendeskNormaliser:
    settings = ConnectorSettings(
        platform="zendesk", secret=SecretStr("s"), service_account_id=service_account_id
    )
    return ZendeskNormaliser(connector_id="zd", settings=settings)


def delivery(body: Any) -> RawDelivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawDelivery(
        delivery_id="d-1",
        connector_id="zd",
        platform=Platform.ZENDESK,
        received_at=RECEIVED,
        body=raw,
        signature_verified=True,
    )


def ticket_event(kind: str, event: dict[str, Any] | None = None, **detail: Any) -> dict[str, Any]:
    """An event as the sandbox's EventPublisher builds it."""
    base = {
        "actor_id": AGENT,
        "assignee_id": AGENT,
        "brand_id": None,
        "created_at": "2025-01-08T14:20:00.000000000Z",
        "custom_status": None,
        "description": "The printer smokes.",
        "external_id": None,
        "form_id": None,
        "group_id": None,
        "id": "5158",
        "is_public": True,
        "organization_id": None,
        "priority": "HIGH",
        "requester_id": REQUESTER,
        "status": "OPEN",
        "subject": "Printer on fire",
        "submitter_id": REQUESTER,
        "tags": ["vip", "printer"],
        "type": None,
        "updated_at": "2025-01-08T14:25:30.123456789Z",
        "via": {"channel": "web"},
    }
    return {
        "type": f"zen:event-type:ticket.{kind}",
        "account_id": 12514403,
        "id": f"evt-{kind}",
        "time": "2025-01-08T14:25:30.123456789Z",
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:ticket:5158",
        "detail": base | detail,
        "event": (event or {}) | {"meta": {"sequence": {"id": "S", "position": 1, "total": 1}}},
    }


def user_event(kind: str, event: dict[str, Any] | None = None, **detail: Any) -> dict[str, Any]:
    base = {
        "created_at": "2025-01-08T14:20:00.000000000Z",
        "email": "maria@example.com",
        "external_id": "crm-42",
        "default_group_id": "0",
        "id": REQUESTER,
        "organization_id": "0",
        "role": "end-user",
        "updated_at": "2025-01-08T14:25:30.000000000Z",
    }
    return {
        "type": f"zen:event-type:user.{kind}",
        "account_id": 12514403,
        "id": f"evt-user-{kind}",
        "time": "2025-01-08T14:25:30.123456789Z",
        "zendesk_event_version": "2022-06-20",
        "subject": f"zen:user:{REQUESTER}",
        "detail": base | detail,
        "event": event or {},
    }


def comment(author: str, *, staff: bool, public: bool = True) -> dict[str, Any]:
    return {
        "comment": {
            "id": "401000000009",
            "body": "Have you tried turning it off?",
            "is_public": public,
            "author": {"id": author, "is_staff": staff, "name": "Someone"},
        }
    }


def one(body: dict[str, Any], service: str | None = INTEGRATION) -> Envelope:
    (envelope,) = normaliser(service).normalise(delivery(body))
    return envelope


MULTISELECT = ticket_event(
    "custom_field_changed",
    {
        "current": {"value": ["topic_billing", "topic_returns"]},
        "previous": {"value": None},
        "custom_field": {"id": "360001000005", "title": "Topics", "type": "multiselect"},
    },
)
RENAMED = user_event("name_changed", {"current": "Maria L", "previous": "Maria"})
SECOND_EMAIL = user_event(
    "identity_created", {"identity": {"id": "1", "type": "email", "value": "maria@work.example"}}
)
USER_FIELD = user_event(
    "custom_field_changed", {"current": "smb", "previous": None, "custom_field": {"key": "segment"}}
)

CASE_ROWS = [
    pytest.param(
        ticket_event("created", via={"channel": "api"}),
        Op.CREATE,
        ["subject", "status", "priority", "tags", "requester", "assignee", "channel"],
        id="created",
    ),
    pytest.param(
        ticket_event("status_changed", {"current": "HOLD", "previous": "OPEN"}, status="HOLD"),
        Op.UPDATE,
        ["status"],
        id="status_changed",
    ),
    pytest.param(
        ticket_event("priority_changed", {"current": "HIGH", "previous": "LOW"}),
        Op.UPDATE,
        ["priority"],
        id="priority_changed",
    ),
    pytest.param(
        ticket_event("subject_changed", {"current": "Printer on fire", "previous": "Printer"}),
        Op.UPDATE,
        ["subject"],
        id="subject_changed",
    ),
    pytest.param(
        ticket_event("tags_changed", {"tags_added": ["vip"], "tags_removed": ["trial"]}),
        Op.UPDATE,
        ["tags", "tags.trial", "tags.vip"],
        id="tags_changed",
    ),
    pytest.param(MULTISELECT, Op.UPDATE, ["custom_fields.360001000005"], id="custom_field_changed"),
    pytest.param(
        ticket_event("agent_assignment_changed", {"current": AGENT, "previous": None}),
        Op.UPDATE,
        ["assignee"],
        id="agent_assignment_changed",
    ),
    pytest.param(
        ticket_event("requester_changed", {"current": REQUESTER, "previous": "7"}),
        Op.UPDATE,
        ["requester"],
        id="requester_changed",
    ),
]


@pytest.mark.parametrize(("body", "op", "changed"), CASE_ROWS)
def test_ticket_events_become_cases(body: dict[str, Any], op: Op, changed: list[str]) -> None:
    envelope = one(body)
    source = envelope.source
    assert (source.entity_type, source.entity_id, envelope.op) == (EntityType.CASE, "5158", op)
    assert envelope.changed_fields == changed
    assert (source.platform, source.connector_id, source.event_type) == (
        Platform.ZENDESK,
        "zd",
        body["type"],
    )
    assert source.source_event_id == body["id"]
    assert source.source_version == "2025-01-08T14:25:30.123456789Z"
    assert source.occurred_at == datetime(2025, 1, 8, 14, 25, 30, 123456, tzinfo=UTC)
    assert envelope.event_id == event_id("zd", body["id"])
    assert envelope.link_id == case_link_id("zendesk", "zd", "5158")
    assert envelope.ingested_at == RECEIVED
    case = envelope.data
    assert isinstance(case, Case)
    assert (case.subject, case.priority, case.tags) == (
        "Printer on fire",
        Priority.HIGH,
        ["vip", "printer"],
    )
    assert case.requester is not None
    assert case.requester.id == REQUESTER
    assert case.assignee is not None
    assert case.assignee.kind is ActorKind.AGENT
    assert case.updated_at == datetime(2025, 1, 8, 14, 25, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("NEW", CaseStatus.NEW),
        ("OPEN", CaseStatus.OPEN),
        ("PENDING", CaseStatus.PENDING),
        ("HOLD", CaseStatus.ON_HOLD),
        ("SOLVED", CaseStatus.SOLVED),
        ("CLOSED", CaseStatus.CLOSED),
    ],
)
def test_status_mapping(status: str, canonical: CaseStatus) -> None:
    case = one(ticket_event("status_changed", status=status)).data
    assert isinstance(case, Case)
    assert case.status is canonical


def test_custom_field_values_keyed_by_field_id() -> None:
    body = ticket_event(
        "custom_field_changed",
        {"current": {"value": "plan_pro"}, "custom_field": {"id": "360001000001"}},
        custom_fields=[{"id": 360001000004, "value": "1234"}],
    )
    case = one(body).data
    assert isinstance(case, Case)
    assert case.custom_fields == {"360001000004": "1234", "360001000001": "plan_pro"}
    multi = one(MULTISELECT).data
    assert isinstance(multi, Case)
    assert multi.custom_fields == {"360001000005": '["topic_billing", "topic_returns"]'}


def test_our_own_link_is_kept_and_foreign_external_ids_are_not() -> None:
    assert one(ticket_event("status_changed", external_id=LINK)).link_id == LINK
    foreign = one(ticket_event("status_changed", external_id="SF-00042"))
    assert foreign.link_id == case_link_id("zendesk", "zd", "5158")


@pytest.mark.parametrize(
    ("actor_id", "service", "kind"),
    [
        pytest.param(INTEGRATION, INTEGRATION, ActorKind.INTEGRATION, id="integration-user"),
        pytest.param(AGENT, INTEGRATION, ActorKind.AGENT, id="agent"),
        pytest.param(REQUESTER, INTEGRATION, ActorKind.CUSTOMER, id="requester"),
        pytest.param("-1", INTEGRATION, ActorKind.SYSTEM, id="zendesk-system"),
        pytest.param(INTEGRATION, None, ActorKind.AGENT, id="no-service-account-configured"),
    ],
)
def test_who_changed_the_ticket(actor_id: str, service: str | None, kind: ActorKind) -> None:
    # via.channel "api" says how the ticket was created, not who changed it now.
    body = ticket_event("status_changed", actor_id=actor_id, via={"channel": "api"})
    actor = one(body, service).source.actor
    assert (actor.kind, actor.id) == (kind, actor_id)


@pytest.mark.parametrize(
    ("author", "staff", "actor_id", "author_kind", "actor_kind"),
    [
        pytest.param(
            INTEGRATION, True, INTEGRATION, ActorKind.INTEGRATION, ActorKind.INTEGRATION, id="ours"
        ),
        pytest.param(AGENT, True, AGENT, ActorKind.AGENT, ActorKind.AGENT, id="agent"),
        pytest.param(
            REQUESTER, False, REQUESTER, ActorKind.CUSTOMER, ActorKind.CUSTOMER, id="cust"
        ),
        # Deskstream imported a customer's message: authored by them, written by us.
        pytest.param(
            REQUESTER, False, INTEGRATION, ActorKind.CUSTOMER, ActorKind.INTEGRATION, id="import"
        ),
    ],
)
def test_comment_added_becomes_a_message(
    author: str, staff: bool, actor_id: str, author_kind: ActorKind, actor_kind: ActorKind
) -> None:
    envelope = one(ticket_event("comment_added", comment(author, staff=staff), actor_id=actor_id))
    source = envelope.source
    assert (source.entity_type, source.entity_id) == (EntityType.MESSAGE, "401000000009")
    assert (envelope.op, envelope.changed_fields) == (Op.CREATE, [])
    assert envelope.link_id == case_link_id("zendesk", "zd", "5158")
    assert source.actor.kind is actor_kind
    message = envelope.data
    assert isinstance(message, Message)
    assert (message.case_id, message.author.kind, message.author.id) == (
        "5158",
        author_kind,
        author,
    )
    assert (message.body_text, message.public) == ("Have you tried turning it off?", True)
    assert message.created_at == source.occurred_at


def test_internal_note_and_made_private() -> None:
    note = one(ticket_event("comment_added", comment(AGENT, staff=True, public=False))).data
    assert isinstance(note, Message)
    assert note.public is False
    private = one(ticket_event("comment_made_private", comment(AGENT, staff=True)))
    assert (private.op, private.changed_fields) == (Op.UPDATE, ["public"])
    assert isinstance(private.data, Message)
    assert private.data.public is False


@pytest.mark.parametrize("kind", ["soft_deleted", "permanently_deleted"])
def test_deletes(kind: str) -> None:
    envelope = one(ticket_event(kind, status="DELETED"))
    assert (envelope.op, envelope.data, envelope.source.entity_id) == (Op.DELETE, None, "5158")


CONTACT_ROWS = [
    pytest.param(user_event("created"), Op.CREATE, ["emails", "external_id"], id="created"),
    pytest.param(RENAMED, Op.UPDATE, ["name"], id="name_changed"),
    pytest.param(
        user_event("external_id_changed", {"current": "crm-42", "previous": None}),
        Op.UPDATE,
        ["external_id"],
        id="external_id_changed",
    ),
    pytest.param(SECOND_EMAIL, Op.UPDATE, ["emails"], id="identity_created"),
    pytest.param(USER_FIELD, Op.UPDATE, ["custom_attributes.segment"], id="custom_field_changed"),
]


@pytest.mark.parametrize(("body", "op", "changed"), CONTACT_ROWS)
def test_user_events_become_contacts(body: dict[str, Any], op: Op, changed: list[str]) -> None:
    envelope = one(body)
    assert (envelope.source.entity_type, envelope.source.entity_id) == (
        EntityType.CONTACT,
        REQUESTER,
    )
    assert (envelope.op, envelope.changed_fields) == (op, changed)
    assert envelope.source.actor.kind is ActorKind.SYSTEM  # user events name no actor
    assert envelope.link_id == contact_link_id(
        "maria@example.com", platform="zendesk", connector_id="zd", entity_id=REQUESTER
    )
    contact = envelope.data
    assert isinstance(contact, Contact)
    assert contact.emails[0] == "maria@example.com"
    assert contact.external_id == "crm-42"


def test_contact_values_from_the_change() -> None:
    renamed = one(RENAMED).data
    assert isinstance(renamed, Contact)
    assert renamed.name == "Maria L"
    identity = one(SECOND_EMAIL).data
    assert isinstance(identity, Contact)
    assert identity.emails == ["maria@example.com", "maria@work.example"]
    field = one(USER_FIELD).data
    assert isinstance(field, Contact)
    assert field.custom_attributes == {"segment": "smb"}
    plan = one(
        user_event("custom_field_changed", {"current": "premium", "custom_field": {"key": "plan"}})
    )
    assert plan.changed_fields == ["plan"]
    assert isinstance(plan.data, Contact)
    assert (plan.data.plan, plan.data.custom_attributes) == ("premium", {})
    phone = one(
        user_event("identity_created", {"identity": {"type": "phone_number", "value": "+1"}})
    )
    assert (phone.changed_fields, getattr(phone.data, "phone", None)) == (["phone"], "+1")
    deleted = one(user_event("deleted"))
    assert (deleted.op, deleted.data) == (Op.DELETE, None)


def test_a_user_without_email_links_by_record() -> None:
    envelope = one(user_event("created", email="", external_id=""))
    assert envelope.link_id == contact_link_id(
        None, platform="zendesk", connector_id="zd", entity_id=REQUESTER
    )
    assert envelope.changed_fields == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(ticket_event("group_assignment_changed"), id="ticket-group"),
        pytest.param(ticket_event("attachment_linked_to_comment"), id="ticket-attachment"),
        pytest.param(ticket_event("merged", {"target_ticket_id": "9"}), id="ticket-merged"),
        pytest.param(user_event("role_changed"), id="user-role"),
        pytest.param(user_event("name_changed", role="agent"), id="staff-user"),
        pytest.param(
            user_event("identity_created", {"identity": {"type": "twitter", "value": "@m"}}),
            id="social-identity",
        ),
        pytest.param(
            ticket_event("created") | {"type": "zen:event-type:organization.created"},
            id="other-domain",
        ),
    ],
)
def test_irrelevant_events_give_nothing(body: dict[str, Any]) -> None:
    assert normaliser().normalise(delivery(body)) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"not json", "not a Zendesk event-subscription payload", id="not-json"),
        pytest.param({"say": "hello"}, "not a Zendesk event-subscription", id="test-webhook"),
        pytest.param(
            ticket_event("created") | {"type": "ticket_created"},
            "not a Zendesk event type",
            id="type",
        ),
        pytest.param(ticket_event("exploded"), "unknown Zendesk ticket event", id="unknown-ticket"),
        pytest.param(user_event("levitated"), "unknown Zendesk user event", id="unknown-user"),
        pytest.param(ticket_event("status_changed", status="BURNING"), "BURNING", id="status"),
        pytest.param(ticket_event("priority_changed", priority="MEH"), "MEH", id="priority"),
        pytest.param(
            ticket_event("created") | {"detail": {"status": "OPEN"}}, "detail", id="no-id"
        ),
        pytest.param(
            ticket_event("created") | {"time": "yesterday"}, "not an ISO-8601 time", id="time"
        ),
        pytest.param(ticket_event("comment_added", {}), "event.comment.id", id="no-comment"),
        pytest.param(
            ticket_event("custom_field_changed", {"current": {"value": 1}}),
            "custom_field.id",
            id="no-field-id",
        ),
    ],
)
def test_malformed_payloads_are_skippable_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(SkippableRecordError) as raised:
        normaliser().normalise(delivery(body))
    assert reason in raised.value.reason


def test_redelivery_gives_the_same_event_ids() -> None:
    body = ticket_event("status_changed")
    assert normaliser().normalise(delivery(body)) == normaliser().normalise(delivery(body))
