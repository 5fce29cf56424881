"""The records a Zendesk account holds, with the indexes the API looks them up by.

Plain dataclasses, no I/O: the services in :mod:`.tickets` and :mod:`.users` change them, the
renderers in :mod:`.render` turn them into the API's JSON. Ids are integers, as the spec's
schemas type them (``zendesk-support-openapi.yaml``, ``TicketObject.id``,
``UserObject.id``); tickets counting up from 1 per account ("nice ids") and the large
account-wide numbers of the other records are UNVERIFIED shapes nothing in the product relies
on (it stores ids as strings and never orders by them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "Attachment",
    "Audit",
    "Comment",
    "Identity",
    "JobStatus",
    "Ticket",
    "Upload",
    "User",
    "ZendeskState",
]


@dataclass
class User:
    id: int
    name: str
    email: str | None
    role: str
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None
    phone: str | None = None
    organization_id: int | None = None
    tags: list[str] = field(default_factory=list)
    user_fields: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    details: str = ""
    verified: bool = False
    active: bool = True
    locale: str = "en-US"
    time_zone: str = "UTC"


@dataclass
class Identity:
    id: int
    user_id: int
    type: str
    value: str
    primary: bool
    verified: bool
    created_at: datetime
    updated_at: datetime


@dataclass
class Attachment:
    id: int
    token: str
    file_name: str
    content_type: str
    data: bytes
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Upload:
    token: str
    attachment_ids: list[int]
    expires_at: datetime
    consumed: bool = False


@dataclass
class Comment:
    id: int
    ticket_id: int
    audit_id: int
    author_id: int
    body: str
    html_body: str
    public: bool
    created_at: datetime
    attachment_ids: list[int] = field(default_factory=list)
    channel: str = "api"
    client: str = ""


@dataclass
class Audit:
    id: int
    ticket_id: int
    author_id: int
    created_at: datetime
    events: list[dict[str, Any]]
    channel: str = "api"
    #: the tags after and before the update, as lists (the audit's own event holds them as
    #: text; the ticket event export shows lists)
    tags: tuple[list[str], list[str]] | None = None


@dataclass
class Ticket:
    id: int
    subject: str
    description: str
    status: str
    requester_id: int
    submitter_id: int
    created_at: datetime
    updated_at: datetime
    priority: str | None = None
    type: str | None = None
    assignee_id: int | None = None
    group_id: int | None = None
    organization_id: int | None = None
    external_id: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[int, Any] = field(default_factory=dict)
    collaborator_ids: list[int] = field(default_factory=list)
    follower_ids: list[int] = field(default_factory=list)
    email_cc_ids: list[int] = field(default_factory=list)
    due_at: datetime | None = None
    is_public: bool = True
    channel: str = "api"
    comment_ids: list[int] = field(default_factory=list)
    audit_ids: list[int] = field(default_factory=list)
    deleted: bool = False


@dataclass
class JobStatus:
    id: str
    job_type: str
    total: int
    results: list[dict[str, Any]]
    status: str = "queued"
    # The real job runs in the background; the sandbox does the work at once but reports
    # "queued" on the first answer so clients exercise their polling path.
    polls: int = 0


class ZendeskState:
    """Every record of one account plus lookup indexes; :meth:`reset` empties it."""

    #: First ids handed out, in Zendesk's magnitudes (tickets are per-account, from 1).
    ID_BASES: ClassVar[dict[str, int]] = {
        "user": 381000000001,
        "staff": 381900000001,  # seeded agents (config.agents)
        "identity": 392000000001,
        "comment": 401000000001,
        "audit": 402000000001,
        "attachment": 410000000001,
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.users: dict[int, User] = {}
        self.identities: dict[int, Identity] = {}
        self.tickets: dict[int, Ticket] = {}
        self.comments: dict[int, Comment] = {}
        self.audits: dict[int, Audit] = {}
        self.attachments: dict[int, Attachment] = {}
        self.attachments_by_token: dict[str, int] = {}
        self.uploads: dict[str, Upload] = {}
        self.jobs: dict[str, JobStatus] = {}
        self.email_index: dict[str, int] = {}  # lower-cased email identity -> user id
        self.identities_by_user: dict[int, list[int]] = {}
        self.user_external_index: dict[str, int] = {}
        self.ticket_external_index: dict[str, list[int]] = {}
        self._next_ticket = 1
        self._next: dict[str, int] = dict(self.ID_BASES)

    # -- ids -------------------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def next_ticket_id(self) -> int:
        value = self._next_ticket
        self._next_ticket += 1
        return value

    # -- users -----------------------------------------------------------------------------

    def user_by_email(self, email: str) -> User | None:
        user_id = self.email_index.get(email.strip().lower())
        return self.users.get(user_id) if user_id is not None else None

    def user_by_external_id(self, external_id: str) -> User | None:
        user_id = self.user_external_index.get(external_id)
        return self.users.get(user_id) if user_id is not None else None

    def identities_of(self, user_id: int) -> list[Identity]:
        return [self.identities[i] for i in self.identities_by_user.get(user_id, [])]

    def add_identity(self, identity: Identity) -> None:
        self.identities[identity.id] = identity
        self.identities_by_user.setdefault(identity.user_id, []).append(identity.id)
        if identity.type == "email":
            self.email_index[identity.value.lower()] = identity.user_id

    def set_user_external_id(self, user: User, external_id: str | None) -> None:
        if user.external_id is not None:
            self.user_external_index.pop(user.external_id, None)
        user.external_id = external_id
        if external_id is not None:
            self.user_external_index[external_id] = user.id

    # -- tickets ---------------------------------------------------------------------------

    def live_ticket(self, ticket_id: int) -> Ticket | None:
        ticket = self.tickets.get(ticket_id)
        return None if ticket is None or ticket.deleted else ticket

    def tickets_by_external_id(self, external_id: str) -> list[Ticket]:
        ids = self.ticket_external_index.get(external_id, [])
        return [t for t in (self.live_ticket(i) for i in ids) if t is not None]

    def set_ticket_external_id(self, ticket: Ticket, external_id: str | None) -> None:
        if ticket.external_id is not None:
            ids = self.ticket_external_index.get(ticket.external_id, [])
            if ticket.id in ids:
                ids.remove(ticket.id)
        ticket.external_id = external_id
        if external_id is not None:
            self.ticket_external_index.setdefault(external_id, []).append(ticket.id)

    # -- admin -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Counts plus every user and ticket, JSON-ready (binary attachment data left out)."""

        def plain(record: Any) -> dict[str, Any]:
            return {k: _jsonable(v) for k, v in asdict(record).items() if k != "data"}

        return {
            "counts": {
                "users": len(self.users),
                "identities": len(self.identities),
                "tickets": sum(1 for t in self.tickets.values() if not t.deleted),
                "deleted_tickets": sum(1 for t in self.tickets.values() if t.deleted),
                "comments": len(self.comments),
                "attachments": len(self.attachments),
                "uploads": len(self.uploads),
                "jobs": len(self.jobs),
            },
            "users": [plain(u) for u in self.users.values()],
            "tickets": [plain(t) for t in self.tickets.values()],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
