"""Salesforce records in canonical terms, both ways: a Case, CaseComment or Contact (as REST
answers it, or as a change event carries it) into the canonical Case, Message and Contact,
the picklists in both directions, and the canonical name of each Salesforce field.

The sink and the normaliser share these, so the values the sink fingerprints after a write
are spelled exactly as the normaliser spells the change event that write causes.

Values arrive in three renderings, all read here: REST (``2025-03-01T09:00:00.000+0000``,
Contact ``Name`` a string), CometD change events (``...Z``, ``Name`` flattened into
``Name.FirstName`` / ``Name.LastName`` by ``cdc_events.expand``) and Pub/Sub change events
(dateTimes as epoch milliseconds, "Event Deserialization Considerations",
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html).

Sources: Salesforce Object Reference, "Case" (Status, Priority, Origin, OwnerId, ContactId),
"CaseComment" (ParentId, IsPublished, CommentBody: at most 4,000 bytes), "Contact" (Name,
Email, Phone, AccountId); "ID Field Type" (key prefixes: ``005`` a User, ``00G`` a queue).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.soql_text import parse_datetime
from schemas.errors import FatalAPIError, SkippableRecordError
from schemas.models import Actor, ActorKind, Case, CaseStatus, Contact, Message, Priority

__all__ = [
    "CASE_FIELDS",
    "COMMENT_FIELDS",
    "COMMENT_MAX_BYTES",
    "CONTACT_FIELDS",
    "HANDOFF_REASON",
    "Vocabulary",
    "comment_text",
    "parse_time",
]

#: the canonical custom field of the AI agent's hand-off reason
HANDOFF_REASON = "ai_handoff_reason"
#: CaseComment.CommentBody holds at most this many bytes
COMMENT_MAX_BYTES = 4000
_TRUNCATED = "\n[truncated by Deskstream: the original is longer than Salesforce allows]"
_USER_PREFIX = "005"

#: Salesforce Case field → canonical field (the handoff field is added per org)
CASE_FIELDS: dict[str, str] = {
    "Subject": "subject",
    "Status": "status",
    "Priority": "priority",
    "Origin": "channel",
    "OwnerId": "assignee",
    "ContactId": "requester",
}
COMMENT_FIELDS: dict[str, str] = {"CommentBody": "body", "IsPublished": "public"}
CONTACT_FIELDS: dict[str, str] = {
    "Email": "emails",
    "Name": "name",
    "Name.FirstName": "name",
    "Name.LastName": "name",
    "Name.Salutation": "name",
    "FirstName": "name",
    "LastName": "name",
    "Phone": "phone",
    "AccountId": "company",
}


def parse_time(value: Any, what: str) -> datetime | None:
    """A dateTime in any rendering (REST, CometD, Pub/Sub epoch milliseconds); None when
    absent; ``SkippableRecordError`` naming the field when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value.strip(), field=what)
        except FatalAPIError:
            pass  # said below, as a delivery to quarantine rather than a poll to stop
    raise SkippableRecordError(
        f"{what} is not a Salesforce dateTime ({str(value)[:40]!r}); check what produced "
        "this delivery"
    )


class _BlockText(HTMLParser):
    """The text of an HTML body, a line break at each block's end."""

    _BLOCKS = frozenset({"p", "div", "li", "br", "tr", "blockquote", "pre", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_endtag(tag)


def _plain(message: Message) -> str:
    if message.body_text or not message.body_html:
        return message.body_text or "(no text)"
    parser = _BlockText()
    parser.feed(message.body_html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line) or "(no text)"


def comment_text(message: Message, attribution_line: str) -> str:
    """A CaseComment body: the attribution line, a blank line, the text (CaseComment is plain
    text); cut to ``COMMENT_MAX_BYTES`` with a note when longer."""
    text = f"{attribution_line}\n\n{_plain(message)}"
    if len(text.encode()) <= COMMENT_MAX_BYTES:
        return text
    room = COMMENT_MAX_BYTES - len(_TRUNCATED.encode())
    cut = text.encode()[:room].decode(errors="ignore")
    return cut + _TRUNCATED


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _contact_name(record: Mapping[str, Any]) -> str | None:
    whole = record.get("Name")
    if isinstance(whole, str) and whole:
        return whole
    parts = [
        record.get(f"{prefix}{part}")
        for part in ("FirstName", "LastName")
        for prefix in ("Name.", "")
    ]
    found = [str(p) for p in parts if p]
    return " ".join(dict.fromkeys(found)) or None


def _account_name(record: Mapping[str, Any]) -> str | None:
    """``Account.Name`` when the read selected it (REST nests it, a flattened row names it)."""
    account = record.get("Account")
    if isinstance(account, Mapping):
        return _text(account.get("Name"))
    return _text(record.get("Account.Name"))


@dataclass(frozen=True)
class Vocabulary:
    """One org's picklists and fields, and who Deskstream is there."""

    settings: SalesforceSettings
    #: the integration user's id: its changes and comments are Deskstream's own
    integration_user: str | None = None

    # -- picklists -------------------------------------------------------------------------

    def status(self, value: Any, record_id: str) -> CaseStatus:
        found = self.settings.status_map.get(str(value)) if value is not None else None
        if found is None:
            raise SkippableRecordError(
                f"Case {record_id} has Status {str(value)[:60]!r}, which the connector's "
                f"status_map does not name ({', '.join(self.settings.status_map)}); add the "
                "org's value to status_map and replay the quarantined deliveries"
            )
        return found

    def priority(self, value: Any, record_id: str) -> Priority | None:
        if value is None or value == "":
            return None
        found = self.settings.priority_map.get(str(value))
        if found is None:
            raise SkippableRecordError(
                f"Case {record_id} has Priority {str(value)[:60]!r}, which the connector's "
                f"priority_map does not name ({', '.join(self.settings.priority_map)}); add "
                "it to priority_map and replay the quarantined deliveries"
            )
        return found

    def salesforce_status(self, status: CaseStatus) -> str:
        return self._spell(self.settings.status_map, status, "status")

    def salesforce_priority(self, priority: Priority) -> str:
        return self._spell(self.settings.priority_map, priority, "priority")

    @staticmethod
    def _spell(table: Mapping[str, Any], value: Any, what: str) -> str:
        for spelled, canonical in table.items():
            if canonical == value:
                return spelled
        raise FatalAPIError(
            f"no Salesforce {what} picklist value stands for canonical {value}; add one to the "
            f"connector's {what}_map (or map {value} away in the route's {what} map), then "
            "`deskstream dlq retry` the command"
        )

    # -- fields ----------------------------------------------------------------------------

    def select(self, sobject: str) -> tuple[str, ...]:
        """What a poll, a reconciliation or a re-read of ``sobject`` selects, so its records
        normalise (``Id`` and ``SystemModstamp`` are always selected by the readers)."""
        link, audit = self.settings.link_field, ("CreatedDate", "LastModifiedDate")
        if sobject == "Case":
            return (*CASE_FIELDS, self.settings.handoff_reason_field, link, *audit)
        if sobject == "Contact":
            return ("Email", "FirstName", "LastName", "Phone", "AccountId", link, *audit)
        if sobject == "CaseComment":
            # The parent's link id: a comment on a Case we created belongs to that link.
            return (*COMMENT_FIELDS, "ParentId", f"Parent.{link}", "CreatedById", *audit)
        raise ValueError(f"Deskstream does not sync Salesforce {sobject} records")

    def case_field(self, name: str) -> str | None:
        """The canonical name of a Case field (``changedFields`` entry); None for the rest."""
        if name == self.settings.handoff_reason_field:
            return f"custom_fields.{HANDOFF_REASON}"
        return CASE_FIELDS.get(name)

    def canonical_fields(self, entity: str, names: Iterable[str]) -> list[str]:
        """Canonical names of the Salesforce fields ``names`` of ``entity``, each once."""
        if entity == "Case":
            mapped = [self.case_field(n) for n in names]
        else:
            table = CONTACT_FIELDS if entity == "Contact" else COMMENT_FIELDS
            mapped = [table.get(n) for n in names]
        return list(dict.fromkeys(m for m in mapped if m))

    def actor(self, user_id: str | None, *, default: ActorKind) -> Actor:
        if not user_id:
            return Actor(kind=ActorKind.SYSTEM)
        if self.integration_user and user_id == self.integration_user:
            return Actor(kind=ActorKind.INTEGRATION, id=user_id)
        return Actor(kind=default, id=user_id)

    # -- records ---------------------------------------------------------------------------

    def case(self, record: Mapping[str, Any], record_id: str) -> Case:
        owner = _text(record.get("OwnerId"))
        contact = _text(record.get("ContactId"))
        custom: dict[str, Any] = {}
        if self.settings.handoff_reason_field in record:
            custom[HANDOFF_REASON] = _text(record.get(self.settings.handoff_reason_field))
        return Case(
            subject=_text(record.get("Subject")),
            status=self.status(record.get("Status"), record_id),
            priority=self.priority(record.get("Priority"), record_id),
            requester=Actor(kind=ActorKind.CUSTOMER, id=contact) if contact else None,
            # A queue owns a Case nobody picked up yet: no assignee.
            assignee=self.actor(owner, default=ActorKind.AGENT)
            if owner and owner.startswith(_USER_PREFIX)
            else None,
            custom_fields=custom,
            channel=_text(record.get("Origin")),
            created_at=parse_time(record.get("CreatedDate"), "CreatedDate"),
            updated_at=parse_time(record.get("LastModifiedDate"), "LastModifiedDate"),
        )

    def message(self, record: Mapping[str, Any], record_id: str) -> Message:
        parent = _text(record.get("ParentId"))
        created = parse_time(record.get("CreatedDate"), "CreatedDate")
        if parent is None or created is None:
            raise SkippableRecordError(
                f"CaseComment {record_id} without ParentId or CreatedDate; the poll must "
                "select Id, ParentId, IsPublished, CommentBody, CreatedById, CreatedDate"
            )
        return Message(
            case_id=parent,
            # A comment's author is a user: a person in the org (or the customer through a
            # portal, which the record does not tell apart), or our integration user.
            author=self.actor(_text(record.get("CreatedById")), default=ActorKind.AGENT),
            body_text=_text(record.get("CommentBody")),
            public=record.get("IsPublished") is True,
            created_at=created,
        )

    def contact(self, record: Mapping[str, Any]) -> Contact:
        email = _text(record.get("Email"))
        return Contact(
            emails=[email] if email else [],
            name=_contact_name(record),
            phone=_text(record.get("Phone")),
            company=_account_name(record),
        )

    def contact_values(self, contact: Contact, fields: Iterable[str] | None) -> dict[str, Any]:
        """The Contact fields to write: every value for a create (``fields`` None), else the
        named canonical fields. ``LastName`` is required: a contact without a name gets its
        email's local part."""
        wanted = None if fields is None else set(fields)
        values: dict[str, Any] = {}
        if wanted is None or "name" in wanted:
            name = contact.name or (contact.emails[0].split("@")[0] if contact.emails else "")
            first, _, last = name.strip().rpartition(" ")
            values["FirstName"] = first or None
            values["LastName"] = last or "(unknown)"
        if (wanted is None or "emails" in wanted) and contact.emails:
            values["Email"] = contact.emails[0]
        if (wanted is None and contact.phone) or (wanted is not None and "phone" in wanted):
            values["Phone"] = contact.phone
        return values
