"""The Zendesk sink: the command vocabulary of ``connectors.base.commands`` as API calls.

| command         | API calls (N attachments, E customer emails)                               |
|-----------------|----------------------------------------------------------------------------|
| case/upsert     | When it may have run before: ``GET tickets?external_id=`` first (found →   |
|                 | ``GET comments`` for the ids, done); a first attempt skips it.             |
|                 | Then the requester: 1 ``POST users``; when Zendesk has the email or        |
|                 | external id (422 ``DuplicateValue``) +≤E+1 lookups (+1 ``create_or_update``|
|                 | when all missed; ``connectors.zendesk.identity``). N                       |
|                 | uploads, then ``POST tickets`` with ``Idempotency-Key`` (≤1 message) or    |
|                 | ``POST imports/tickets`` + ``GET comments`` (ids; the import omits them)   |
| case/update     | 1 ``PUT tickets/{id}``; 0 when nothing to write; +1 lookup without target. |
|                 | With ``expect.<field>`` (status, priority) the PUT is a ``safe_update``:   |
|                 | nothing extra with a known stamp (cached from the sink's last answer for   |
|                 | the ticket, or the command's ``updated_stamp``), else +1 ``GET`` first;    |
|                 | +1 ``GET`` +1 ``PUT`` per 409 conflict (≤3 re-reads, then retriable); no   |
|                 | ``PUT`` after the re-read when every field was left out. The owner         |
|                 | (``assignee``): +1 ``GET users/search`` for an email the agent directory   |
|                 | does not know yet (``connectors.zendesk.agents``), else nothing. When it   |
|                 | may have run before: +1 ``GET`` first, no ``PUT`` when the ticket holds it |
| message/append  | N uploads + 1 ``PUT``; +1 lookup without target; +1 ``GET ticket`` for a   |
|                 | customer's public reply when its requester is not cached; +1 ``GET       |
|                 | comments`` on a retry that may have landed already (see ``_landed``)       |
| contact/upsert  | ≤E+1 lookups, then 1 ``create_or_update`` or, when found, 1 ``PUT`` if     |
|                 | anything changed; emails changed: +1 ``GET identities`` +1 per new email   |
| contact/update  | 1 ``PUT users/{id}`` (0 when nothing to write, or when every field is      |
|                 | ``unheard`` and this sink's own write answered the same values); may have  |
|                 | run before: +1 ``GET`` first, no ``PUT`` when the user holds it;           |
|                 | identities as above                                                        |

Owners: a command's ``assignee`` names an agent by email (None: nobody); the ticket's
``assignee_id`` becomes that agent's id (``null`` to unassign). An email no Zendesk agent has
is left out of the write, with the reason in ``detail`` and ``skipped``; the rest of the write
goes ahead. ``assignee_email`` (write-only in the spec) would save the lookup, but the spec
does not say what an email without an agent does to the rest of the update (the sandbox
refuses the whole update with 422, the harsher reading), so it is not used. The owner is not
compare-and-set: a crossed assignment is caught by its echo, as on Intercom.

Authors and times: the Ticket Import API sets each comment's author and time, so an import
writes a customer's public messages as the requester (end-user comments: no notification of
their own words comes back to them) and everything else as the integration user below an
``attribution`` line. Creates and updates cannot set a comment's time: every message they
write carries the attribution line, a customer's public reply still authored by the requester.

Concurrent edits (case/update): a field with an ``expect.<field>`` option is written only
while the ticket still holds the expected value (or already the new one). The PUT carries
``safe_update`` with the newest ``updated_at`` the sink saw for the ticket in any answer (a
bounded cache; the command's ``updated_stamp`` when that is newer or nothing is cached; a
``GET`` when neither is known or the cached values contradict the expectation). A 409 means
someone changed the ticket meanwhile: the sink re-reads it and leaves out each expected field
a person changed to a third value (reported in ``detail``; the sync stage decides again when
that change arrives), keeps the rest (tag deltas and custom fields commute) and writes again
with the fresh stamp. Zendesk's stamps have whole seconds: a change in the same second as the
stamp is not detected (the API's limit, not the sink's).

Ambiguous writes (the write applied, the answer lost; the contract is in
``connectors.base.sink``): a case/upsert that may have run before looks for the ticket by
external id first. A first attempt cannot meet an earlier one's ticket, so it skips that
lookup (issue 11: one call in five of an escalation). Every create that may meet one is
looked up: the runner hands anything that may have run before over as ``attempt`` 2, a lost
answer here makes the retry uncertain, the sync stage sends a create tried again after a
failed one as ``attempt`` 2 (the failed one may have landed), and a create that answered in
this process is remembered until its command finishes (a 429 on a later call of the command,
the comment ids, is not uncertain for the base, yet the ticket exists). ``POST tickets``
carries the command's ``Idempotency-Key``, one per link (a retry under the same key and body
gets Zendesk's first answer back; with another body or upload tokens Zendesk answers 400
``IdempotentRequestError``, a retry that then finds the ticket by external id). The import
takes no key: the lookup alone protects it. Users are created only after every lookup
missed, with ``create_or_update`` (an upsert by email or external id); email identities are
added only when the re-read identities lack them. A case/update sets values and tag deltas,
so a repeat changes nothing, but it is still a write (an Update Ticket call, an audit, our
write counted twice): one that may have run before reads the ticket (a contact/update the
user) and makes no ``PUT`` when it already holds every value, and answers with the
fingerprints of what it holds, as applied. A message/append is the one write Zendesk cannot
deduplicate (ticket updates take no key): when it may have run before (``attempt > 1``, or
an attempt in this process failed without an answer) the sink reads the newest
``_LANDED_LOOKBACK`` (20) comments and skips the write when one carries the same body
(attribution line included; HTML bodies compared by their words). Limits, measured by
``bench/ambiguous_writes.py``: a copy written twice only when 20 or more comments landed on
the ticket between the lost answer and the retry; a message not written only when a
*different* command carries the very same body (same author, same minute, same platform,
same text) within those 20 comments. A person cannot cause either: their comments carry no
attribution line.

``created_ids`` uses the sync stage's names for the parts of a command: ``thread:<index>``
for each message of a case/upsert's thread, ``message`` for an append. Own-write
fingerprints use the values Zendesk answered, spelled canonically like the normaliser spells
them: ``fingerprint("zendesk", ticket_id, field, value)`` for status, priority, subject,
tags, ``custom_fields.<id>`` and ``message`` (each plain-text comment body); on the user id
for ``name``, ``phone``, ``external_id``, ``company``, ``plan``, ``custom_attributes.<key>``.
"""

from __future__ import annotations

import html
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from connectors.base.commands import (
    CONTACT_CREATED,
    CONTACT_MATCHED,
    CREATED_CONTACT,
    CREATED_MESSAGE,
    CREATED_OWNER,
    OPTION_EXPECT_PREFIX,
    OPTION_GROUP_ID,
    OPTION_SOURCE_PLATFORM,
    OPTION_TAGS_ADDED,
    OPTION_TAGS_REMOVED,
    OPTION_UNHEARD,
    OPTION_UPDATED_STAMP,
    decode_list,
    thread_key,
)
from connectors.base.directory import AgentDirectory, OwnerWrite, owner_write
from connectors.base.fingerprints import FIELD_MESSAGE, fingerprint
from connectors.base.http import platform_http
from connectors.base.ratelimit import RateBudget, register_account_budget
from connectors.base.settings import ConnectorSettings
from connectors.base.sink import Sink, SinkResult, command_data
from connectors.zendesk.agents import ZendeskAgents
from connectors.zendesk.client import UpdateConflictError, ZendeskClient
from connectors.zendesk.identity import ZendeskIdentity
from connectors.zendesk.models import (
    PROFILE_USER_FIELDS,
    ZENDESK_STATUS,
    Ticket,
    TicketWrite,
    User,
    canonical_custom_value,
    canonical_ticket_value,
    canonical_user_value,
    comment_body,
    custom_fields_payload,
    parse_time,
    user_payload,
    zendesk_time,
)
from schemas.errors import ConfigurationError, FatalAPIError, RetriableAPIError
from schemas.models import (
    ActorKind,
    Case,
    CommandAction,
    Contact,
    EntityType,
    Message,
    SyncCommand,
)

__all__ = [
    "ZendeskSink",
]

logger = logging.getLogger(__name__)

_CACHE = 10_000
#: how many of a ticket's newest comments a retried append looks through for its own
_LANDED_LOOKBACK = 20
#: scalar fields a case/update writes compare-and-set when the command has ``expect.<field>``
_EXPECTABLE = ("status", "priority")
#: re-reads after safe_update conflicts, in all, before the command is handed back to retry
_MAX_REREADS = 3
#: tags that break a line in the rendered text (a word ends there); others do not
_BREAK = re.compile(
    r"<(?:br|/?p|/?div|/?li|/?ul|/?ol|/?h[1-6]|/?tr|/?td|/?blockquote)\b[^>]*>", re.I
)
_TAG = re.compile(r"<[^>]+>")
_Handler = Callable[[SyncCommand], Awaitable[SinkResult]]


def _case_prints(ticket: Ticket, fields: Iterable[str]) -> list[str]:
    return [fingerprint("zendesk", ticket.id, f, canonical_ticket_value(ticket, f)) for f in fields]


def _scalar(ticket: Ticket, field: str) -> str:
    """A status or priority as ``expect.<field>`` spells it: canonical, ``""`` for none."""
    value = canonical_ticket_value(ticket, field)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class _Seen:
    """A ticket as the sink last saw it in an answer: its version and expectable values."""

    at: datetime
    values: dict[str, str]

    @property
    def stamp(self) -> str:
        return zendesk_time(self.at)  # REST spells updated_at in whole seconds


def _left_out(field: str, now: str, expected: str) -> str:
    return (
        f"{field} left out: changed on Zendesk to {now or 'none'} after the sync decided "
        f"(expected {expected or 'none'}); the sync stage decides again when that change arrives"
    )


def _words(markup: str) -> list[str]:
    """The words of an HTML body, as they read in the plain text Zendesk renders from it."""
    spaced = _TAG.sub("", _BREAK.sub(" ", markup))
    return html.unescape(spaced).split()


def _holds(user: User, payload: dict[str, Any]) -> bool:
    """Whether ``user`` already has every value of an update ``payload``."""
    for key, value in payload.items():
        if key == "user_fields":
            if any(user.user_fields.get(k) != v for k, v in value.items()):
                return False
        elif getattr(user, key, None) != value:
            return False
    return True


def _same_custom(held: Any, wanted: Any) -> bool:
    """Custom field values compared as Zendesk keeps them: an integer or decimal field
    answers with the number as text (``"4321"`` for ``4321``)."""
    if held is None or wanted is None:
        return held is wanted
    return str(held) == str(wanted)


def _ticket_holds(ticket: Ticket, payload: dict[str, Any]) -> bool:
    """Whether ``ticket`` already has every value of a case/update ``payload`` (tag deltas:
    each added tag there, each removed one absent)."""
    tags = set(ticket.tags)
    for key, value in payload.items():
        if key == "additional_tags":
            held = set(value) <= tags
        elif key == "remove_tags":
            held = not set(value) & tags
        elif key == "custom_fields":
            held = all(
                _same_custom(
                    canonical_ticket_value(ticket, f"custom_fields.{entry['id']}"),
                    canonical_custom_value(entry["value"]),
                )
                for entry in value
            )
        elif key == "status":
            held = ticket.status.lower() == value
        elif key == "assignee_id":  # an agent's id, or None for nobody
            held = ticket.assignee_id == (None if value is None else str(value))
        else:  # priority, subject
            held = getattr(ticket, key, None) == value
        if not held:
            return False
    return True


def _owner_written(
    ticket_id: str, payload: dict[str, Any], owner: OwnerWrite | None
) -> tuple[list[str], dict[str, str]]:
    """The owner's fingerprint and created id when a case/update's ``payload`` carries it."""
    if "assignee_id" not in payload or owner is None:
        return [], {}
    prints = [fingerprint("zendesk", ticket_id, "assignee", owner.email)]
    return prints, ({CREATED_OWNER: owner.agent_id} if owner.agent_id else {})


def _user_prints(user: User, fields: Iterable[str]) -> list[str]:
    return [fingerprint("zendesk", user.id, f, canonical_user_value(user, f)) for f in fields]


class ZendeskSink(Sink):
    platform: ClassVar[str] = "zendesk"
    client: ZendeskClient

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        http: httpx.AsyncClient | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        if not settings.api_base_url:
            raise ConfigurationError(
                f"connector {connector_id!r} has no api_base_url; set "
                f"DESKSTREAM_CONNECTORS__{connector_id}__API_BASE_URL"
            )
        self._owns_http = http is None
        self._http = http or platform_http(
            httpx.Timeout(30.0, connect=10.0), base_url=settings.api_base_url or ""
        )
        client = ZendeskClient(self._http, settings=settings, budget=budget)
        super().__init__(connector_id=connector_id, client=client)
        register_account_budget(connector_id, client.budget)  # the polls yield to it
        self.agents = AgentDirectory(
            ZendeskAgents(self.client), ttl=settings.agent_directory_ttl_seconds
        )
        self.identity = ZendeskIdentity(self.client)
        self._integration_id = settings.service_account_id or None
        # Ticket → requester, so a customer's reply needs no extra read on most appends.
        self._requesters: OrderedDict[str, str] = OrderedDict()
        # Ticket → its newest version seen in an answer: the stamp of a safe_update.
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        # case/upserts whose ticket this process created while the command has not finished:
        # a later call of it that fails with a 429 (the comment ids) leaves the command at
        # attempt 1 and not uncertain (a 429 writes nothing itself), yet its ticket exists
        self._created: OrderedDict[str, None] = OrderedDict()
        # Users as the answers to this sink's own writes held them (create_or_update, PUT):
        # a contact/update of fields the link never heard on Zendesk (``OPTION_UNHEARD``)
        # makes no PUT when this process's own write just set the same values there (the
        # name of a requester the case/upsert created: ``user.created`` carries no name).
        self._written_users: OrderedDict[str, User] = OrderedDict()
        self._handlers: dict[tuple[EntityType, CommandAction], _Handler] = {
            (EntityType.CASE, CommandAction.UPSERT): self._case_upsert,
            (EntityType.CASE, CommandAction.UPDATE): self._case_update,
            (EntityType.MESSAGE, CommandAction.APPEND): self._message_append,
            (EntityType.CONTACT, CommandAction.UPSERT): self._contact_upsert,
            (EntityType.CONTACT, CommandAction.UPDATE): self._contact_update,
        }

    async def write(self, command: SyncCommand) -> SinkResult:
        kind, action = command.target.entity_type, command.action
        handler = self._handlers.get((kind, action))
        if handler is None:
            supported = ", ".join(f"{k.value}/{a.value}" for k, a in self._handlers)
            raise FatalAPIError(
                f"the Zendesk sink cannot {action.value} a {kind.value} (it executes {supported}); "
                "the planner issued a command outside the vocabulary of connectors.base.commands"
            )
        return await handler(command)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- helpers ---------------------------------------------------------------------------

    def _remember(self, ticket: Ticket) -> None:
        """Every ticket the sink reads or writes passes here."""
        if ticket.requester_id is not None:
            self._requesters[ticket.id] = ticket.requester_id
            self._requesters.move_to_end(ticket.id)
            while len(self._requesters) > _CACHE:
                self._requesters.popitem(last=False)
        seen = self._seen.get(ticket.id)
        if ticket.updated_at is not None and (seen is None or ticket.updated_at >= seen.at):
            values = {f: _scalar(ticket, f) for f in _EXPECTABLE}
            self._seen[ticket.id] = _Seen(ticket.updated_at, values)
            self._seen.move_to_end(ticket.id)
            while len(self._seen) > _CACHE:
                self._seen.popitem(last=False)

    def _wrote_user(self, user: User) -> None:
        """``user`` is the answer to a write of this sink: it holds what was written."""
        self._written_users[user.id] = user
        self._written_users.move_to_end(user.id)
        while len(self._written_users) > _CACHE:
            self._written_users.popitem(last=False)

    def _landed_create(self, command: SyncCommand) -> None:
        """The create of ``command`` answered: until the command finishes, a retry of it
        looks the ticket up (see ``_created``)."""
        self._created[command.command_id] = None
        while len(self._created) > _CACHE:
            self._created.popitem(last=False)

    async def _integration_user(self) -> str:
        if self._integration_id is None:
            self._integration_id = (await self.client.me()).id
        return self._integration_id

    async def _find_ticket(self, link_id: str) -> Ticket | None:
        tickets = await self.client.tickets_by_external_id(link_id)
        if not tickets:
            return None
        ticket = min(tickets, key=lambda t: int(t.id) if t.id.isdigit() else 0)
        if len(tickets) > 1:
            logger.warning(
                "zendesk tickets share one link link=%s count=%s using=%s",
                link_id,
                len(tickets),
                ticket.id,
            )
        self._remember(ticket)
        return ticket

    async def _target_ticket(self, command: SyncCommand) -> str:
        if command.target.entity_id:
            return command.target.entity_id
        ticket = await self._find_ticket(command.link_id)
        if ticket is None:
            raise FatalAPIError(
                f"no Zendesk ticket has external_id {command.link_id} yet: the case/upsert that "
                "creates it has not run; retry this command after it"
            )
        return ticket.id

    async def _requester_of(self, ticket_id: str) -> str:
        if ticket_id not in self._requesters:
            self._remember(await self.client.ticket(ticket_id))
        return self._requesters.get(ticket_id) or await self._integration_user()

    async def _reupload(self, message: Message) -> list[str]:
        tokens = []
        for attachment in message.attachments:
            data = await self.client.download(
                attachment.source_url, name=attachment.name, sha256=attachment.sha256
            )
            upload = await self.client.upload(
                data, filename=attachment.name, content_type=attachment.content_type
            )
            tokens.append(upload.token)
        return tokens

    async def _comment(
        self, message: Message, *, requester: str, platform: str, imported: bool
    ) -> tuple[dict[str, Any], str | None]:
        """A comment and the fingerprintable text it carries."""
        as_requester = message.author.kind is ActorKind.CUSTOMER and message.public
        key, text = comment_body(message, platform, attribute=not (imported and as_requester))
        comment: dict[str, Any] = {key: text, "public": message.public}
        if as_requester:
            comment["author_id"] = int(requester)
        elif imported:  # a create or update defaults the author to the caller; an import
            comment["author_id"] = int(await self._integration_user())  # is told explicitly
        if imported:
            comment["created_at"] = zendesk_time(min(message.created_at, datetime.now(UTC)))
        tokens = await self._reupload(message)
        if tokens:
            comment["uploads"] = tokens
        return comment, text if key == "body" else None

    async def _thread_ids(
        self, ticket_id: str, thread: list[Message]
    ) -> tuple[dict[str, str], list[str]]:
        """Thread message → comment id, by position: Deskstream wrote the thread in order."""
        if not thread:
            return {}, []
        comments = await self.client.comments(ticket_id, limit=len(thread))
        ids = {thread_key(i): c.id for i, c in enumerate(comments)}
        prints = [fingerprint("zendesk", ticket_id, FIELD_MESSAGE, c.body) for c in comments]
        return ids, prints

    # -- cases ---------------------------------------------------------------------------

    def _result(
        self, target: str | None, prints: list[str], detail: str, **more: Any
    ) -> SinkResult:
        # api_calls is filled in by Sink.execute, which sees the whole command.
        status = more.pop("status_code", self.client.last_status)
        return SinkResult(target, status, 0, fingerprints=prints, detail=detail, **more)

    async def _owner(self, command: SyncCommand, case: Case) -> OwnerWrite | None:
        """The owner to write when the command changes it (None: it does not)."""
        if "assignee" not in command.changed_fields:
            return None
        return await owner_write(self.agents, case.assignee, platform="Zendesk")

    async def _case_upsert(self, command: SyncCommand) -> SinkResult:
        case = command_data(command, Case)
        fields = ["status", "priority", "subject", "tags"]
        fields += [f"custom_fields.{k}" for k in sorted(case.custom_fields)]
        thread = list(command.thread)
        # The lookup by external id finds what an earlier attempt created. A first attempt
        # has none (the runner's contract; a create tried again after a failed one comes as
        # attempt 2 from the sync stage), so it goes straight to the create.
        may_exist = self.may_have_run(command) or command.command_id in self._created
        existing = await self._find_ticket(command.link_id) if may_exist else None
        if existing is not None:  # an earlier attempt created it; recover its comment ids
            ids, prints = await self._thread_ids(existing.id, thread)
            self._created.pop(command.command_id, None)
            detail = f"ticket {existing.id} already mirrors the link"
            prints = _case_prints(existing, fields) + prints
            return self._result(existing.id, prints, detail, written=False, created_ids=ids)
        customer, written = await self.identity.customer(command.contact, case)
        if written:
            self._wrote_user(customer)
        requester = customer.id
        options = command.options
        tags = set(case.tags) | set(decode_list(options.get(OPTION_TAGS_ADDED)))
        tags -= set(decode_list(options.get(OPTION_TAGS_REMOVED)))
        ticket: dict[str, Any] = {
            "external_id": command.link_id,
            "requester_id": int(requester),
            "status": ZENDESK_STATUS[case.status],
            "tags": sorted(tags),
            "subject": case.subject or None,
            "priority": case.priority.value if case.priority else None,
        }
        if case.custom_fields:
            keys = sorted(case.custom_fields)
            ticket["custom_fields"] = custom_fields_payload(case.custom_fields, keys)
        if options.get(OPTION_GROUP_ID, "").isdigit():
            ticket["group_id"] = int(options[OPTION_GROUP_ID])
        ticket = {k: v for k, v in ticket.items() if v is not None}
        owner = await self._owner(command, case)
        if owner is not None and owner.agent_id is not None:
            ticket["assignee_id"] = int(owner.agent_id)
        platform = options.get(OPTION_SOURCE_PLATFORM, "generic")
        if len(thread) > 1:
            comments = [
                (await self._comment(m, requester=requester, platform=platform, imported=True))[0]
                for m in thread
            ]
            ticket["created_at"] = zendesk_time(min(thread[0].created_at, datetime.now(UTC)))
            created = await self.client.import_ticket({**ticket, "comments": comments})
            self._landed_create(command)
            ids, prints = await self._thread_ids(created.id, thread)
        else:
            text: str | None = None
            if thread:
                comment, text = await self._comment(
                    thread[0], requester=requester, platform=platform, imported=False
                )
            else:  # Zendesk needs a first comment: a case without messages gets its subject
                comment = {"body": case.subject or "(created by Deskstream)", "public": False}
            write = await self.client.create_ticket(
                {**ticket, "comment": comment}, idempotency_key=command.idempotency_key
            )
            self._landed_create(command)
            created, comment_id = write.ticket, write.audit.comment_id() if write.audit else None
            ids = {thread_key(0): comment_id} if thread and comment_id else {}
            prints = [fingerprint("zendesk", created.id, FIELD_MESSAGE, text)] if text else []
        self._remember(created)
        self._created.pop(command.command_id, None)
        detail = f"ticket {created.id} created with {len(thread)} messages"
        skipped: list[str] = []
        if owner is not None and owner.skipped:
            detail, skipped = f"{detail}; {owner.skipped}", ["assignee"]
        elif owner is not None and owner.agent_id is not None:
            prints.append(fingerprint("zendesk", created.id, "assignee", owner.email))
            ids[CREATED_OWNER] = owner.agent_id
        return self._result(
            created.id,
            _case_prints(created, fields) + prints,
            detail,
            created_ids=ids,
            skipped=skipped,
        )

    async def _case_update(self, command: SyncCommand) -> SinkResult:
        case = command_data(command, Case)
        changed = set(command.changed_fields)
        payload: dict[str, Any] = {}
        if "status" in changed:
            payload["status"] = ZENDESK_STATUS[case.status]
        if "priority" in changed:
            payload["priority"] = case.priority.value if case.priority else None
        if "subject" in changed and case.subject:
            payload["subject"] = case.subject
        keys = [
            k
            for k in sorted(case.custom_fields)
            if {"custom_fields", f"custom_fields.{k}"} & changed
        ]
        if keys:
            payload["custom_fields"] = custom_fields_payload(case.custom_fields, keys)
        # Tags travel as deltas: a blind overwrite would drop tags Zendesk's own users set.
        added = decode_list(command.options.get(OPTION_TAGS_ADDED))
        removed = decode_list(command.options.get(OPTION_TAGS_REMOVED))
        if added:
            payload["additional_tags"] = added
        if removed:
            payload["remove_tags"] = removed
        owner = await self._owner(command, case)
        if owner is not None and owner.skipped is None:
            payload["assignee_id"] = int(owner.agent_id) if owner.agent_id else None
        skipped = ["assignee"] if owner is not None and owner.skipped else []
        if not payload:
            detail = "nothing Zendesk takes among the changed fields"
            if owner is not None and owner.skipped:
                detail = owner.skipped
            return self._result(
                command.target.entity_id,
                [],
                detail,
                written=False,
                status_code=None,
                skipped=skipped,
            )
        ticket_id = await self._target_ticket(command)
        fields: list[str] = [f for f in ("status", "priority", "subject") if f in payload]
        fields += (["tags"] if added or removed else []) + [f"custom_fields.{k}" for k in keys]
        if self.may_have_run(command):
            # Run again after a crash between Zendesk's answer and the commit (or a lost
            # answer): a PUT of values the ticket holds would still count as our write and
            # cost an Update Ticket call, so read first and write nothing when it holds them.
            current = await self.client.ticket(ticket_id)
            self._remember(current)
            if _ticket_holds(current, payload):
                owner_prints, ids = _owner_written(ticket_id, payload, owner)
                held = fields + (["assignee"] if owner_prints else [])
                reasons = [owner.skipped] if owner is not None and owner.skipped else []
                detail = "; ".join(
                    [f"ticket {ticket_id} already holds {', '.join(held)}", *reasons]
                )
                prints = _case_prints(current, fields) + owner_prints
                return self._result(
                    ticket_id, prints, detail, written=False, skipped=skipped, created_ids=ids
                )
        # Compare-and-set for the scalar fields the sync stage said what it expected of.
        expected = {
            f: command.options[OPTION_EXPECT_PREFIX + f]
            for f in _EXPECTABLE
            if f in payload and OPTION_EXPECT_PREFIX + f in command.options
        }
        if expected:
            intended = {f: self._written_value(case, f) for f in expected}
            stamp = command.options.get(OPTION_UPDATED_STAMP)
            write, left_out, rereads = await self._safe_update(
                ticket_id, payload, expected, intended, stamp
            )
        else:
            write, left_out, rereads = await self.client.update_ticket(ticket_id, payload), {}, 0
        reasons = [left_out[f] for f in _EXPECTABLE if f in left_out]
        if owner is not None and owner.skipped:
            reasons.append(owner.skipped)
        if rereads:
            plural = "s" if rereads > 1 else ""
            reasons.append(f"re-read after {rereads} safe_update conflict{plural}")
        if write is None:
            detail = "; ".join([f"ticket {ticket_id} not updated", *reasons])
            return self._result(ticket_id, [], detail, written=False, skipped=skipped)
        self._remember(write.ticket)
        written = [f for f in fields if f not in left_out]
        prints = _case_prints(write.ticket, written)
        owner_prints, ids = _owner_written(ticket_id, payload, owner)
        written += ["assignee"] if owner_prints else []
        prints += owner_prints
        detail = "; ".join([f"ticket {ticket_id} updated: {', '.join(written)}", *reasons])
        return self._result(ticket_id, prints, detail, skipped=skipped, created_ids=ids)

    @staticmethod
    def _written_value(case: Case, field: str) -> str:
        """The canonical value a case/update writes for an expectable field."""
        if field == "status":
            return case.status.value
        return case.priority.value if case.priority else ""

    def _first_stamp(
        self, ticket_id: str, option: str | None, fits: Callable[[_Seen], bool]
    ) -> str | None:
        """The stamp for the first safe_update, or None when the ticket must be read first:
        the newest of the cached answer and the command's ``updated_stamp``; the cached one only
        when its values fit the expectations (else the sync stage and Zendesk disagree on a
        version the sink has seen: a read settles it)."""
        seen = self._seen.get(ticket_id)
        planned: datetime | None = None
        if option:
            try:
                planned = parse_time(option)
            except ValueError:
                logger.warning("zendesk updated_stamp option unreadable ticket=%s", ticket_id)
        if seen is not None and (planned is None or seen.at >= planned.replace(microsecond=0)):
            return seen.stamp if fits(seen) else None
        return zendesk_time(planned) if planned is not None else None

    async def _safe_update(
        self,
        ticket_id: str,
        payload: dict[str, Any],
        expected: dict[str, str],
        intended: dict[str, str],
        option: str | None,
    ) -> tuple[TicketWrite | None, dict[str, str], int]:
        """``payload`` written with ``safe_update``; each expected field only while Zendesk
        holds the expected (or the intended) value. Returns the write (None when every field
        was left out), the reasons of the fields left out, and the re-reads after conflicts."""

        def fits(values: dict[str, str], field: str) -> bool:
            # Several expected values (comma-separated) when writes are still on their way
            # to the ticket: any of them is a value the sync stage knows about.
            return values[field] in {*expected[field].split(","), intended[field]}

        stamp = self._first_stamp(
            ticket_id, option, lambda seen: all(fits(seen.values, f) for f in expected)
        )
        left_out: dict[str, str] = {}
        rereads = 0
        while True:
            if stamp is None:  # read the ticket, decide per field again
                fresh = await self.client.ticket(ticket_id)
                self._remember(fresh)
                if fresh.updated_at is None:
                    raise RetriableAPIError(
                        f"zendesk answered ticket {ticket_id} without updated_at, so a safe "
                        "update cannot be made; will retry"
                    )
                values = {f: _scalar(fresh, f) for f in expected}
                left_out = {
                    f: _left_out(f, values[f], expected[f]) for f in expected if not fits(values, f)
                }
                stamp = zendesk_time(fresh.updated_at)
            body = {k: v for k, v in payload.items() if k not in left_out}
            if not body:
                return None, left_out, rereads
            # Without an expected field left in the write there is nothing to compare.
            guarded = any(f in body for f in expected)
            try:
                write = await self.client.update_ticket(
                    ticket_id, body, updated_stamp=stamp if guarded else None
                )
            except UpdateConflictError:
                if rereads >= _MAX_REREADS:
                    raise RetriableAPIError(
                        f"zendesk ticket {ticket_id} changed under each of {rereads + 1} safe "
                        "updates in a row (someone is editing it right now); nothing was "
                        "written. The command is retried later and re-reads the ticket; if "
                        "it dead-letters, `deskstream dlq retry` it once the ticket is quiet",
                        status=409,
                    ) from None
                rereads += 1
                stamp = None
                continue
            return write, left_out, rereads

    async def _landed(
        self, command: SyncCommand, ticket_id: str, key: str, text: str
    ) -> str | None:
        """The comment an earlier attempt of this append wrote, if it landed. Zendesk updates
        take no idempotency key, so an append that may have run before (``attempt > 1``: the
        runner's contract, see ``connectors.base.sink``; or an attempt in this process that
        failed without an answer) reads the ticket's newest ``_LANDED_LOOKBACK`` comments
        first and looks for its own body. An HTML body is compared by its words with the
        plain text Zendesk renders from it (Zendesk rewrites the markup)."""
        if not self.may_have_run(command):
            return None
        recent = await self.client.comments(ticket_id, limit=_LANDED_LOOKBACK, newest_first=True)
        if key == "body":
            return next((c.id for c in recent if c.body == text), None)
        words = _words(text)
        return next((c.id for c in recent if c.body.split() == words), None)

    async def _message_append(self, command: SyncCommand) -> SinkResult:
        message = command_data(command, Message)
        ticket_id = await self._target_ticket(command)
        platform = command.options.get(OPTION_SOURCE_PLATFORM, "generic")
        key, body = comment_body(message, platform, attribute=True)
        landed = await self._landed(command, ticket_id, key, body)
        if landed is not None:
            prints = (
                [fingerprint("zendesk", ticket_id, FIELD_MESSAGE, body)] if key == "body" else []
            )
            detail = f"comment {landed} on ticket {ticket_id} is this append's earlier attempt"
            ids = {CREATED_MESSAGE: landed}
            return self._result(ticket_id, prints, detail, written=False, created_ids=ids)
        requester = ""
        if message.author.kind is ActorKind.CUSTOMER and message.public:
            requester = await self._requester_of(ticket_id)
        comment, text = await self._comment(
            message, requester=requester, platform=platform, imported=False
        )
        write = await self.client.update_ticket(ticket_id, {"comment": comment})
        self._remember(write.ticket)
        comment_id = write.audit.comment_id() if write.audit else None
        prints = [fingerprint("zendesk", ticket_id, FIELD_MESSAGE, text)] if text else []
        kind = "public reply" if message.public else "internal note"
        ids = {CREATED_MESSAGE: comment_id} if comment_id else {}
        return self._result(ticket_id, prints, f"{kind} on ticket {ticket_id}", created_ids=ids)

    # -- contacts --------------------------------------------------------------------------

    async def _contact_upsert(self, command: SyncCommand) -> SinkResult:
        contact = command_data(command, Contact)
        found = await self.identity.find_user(contact)
        if found is not None:  # then write changed_fields, as an update does
            target = command.target.model_copy(update={"entity_id": found.id})
            found_command = command.model_copy(update={"target": target})
            updated = await self._contact_update(found_command, current=found)
            return replace(updated, created_ids={CREATED_CONTACT: CONTACT_MATCHED})
        # create_or_update matches by email and external id itself: a user the search has
        # not indexed yet is updated (200), never doubled
        user, created = await self.client.create_or_update_user(user_payload(contact, None))
        self._wrote_user(user)
        fields = ["name", "phone", "external_id", *PROFILE_USER_FIELDS]
        fields += [f"custom_attributes.{k}" for k in contact.custom_attributes]
        prints = _user_prints(user, fields)
        made = CONTACT_CREATED if created else CONTACT_MATCHED
        detail = f"user {user.id} created" if created else f"user {user.id} matched by Zendesk"
        return self._result(user.id, prints, detail, created_ids={CREATED_CONTACT: made})

    async def _contact_update(
        self, command: SyncCommand, *, current: User | None = None
    ) -> SinkResult:
        """``current``: the user as a lookup just read it; when it already holds every value
        to write (an upsert run again after a crash, or a profile that did not change), no
        ``PUT`` is made."""
        contact = command_data(command, Contact)
        user_id = command.target.entity_id
        if not user_id:
            raise FatalAPIError(
                "contact/update without target.entity_id: contact/upsert finds the user first"
            )
        changed = set(command.changed_fields)
        payload = user_payload(contact, changed)
        added = await self.identity.add_emails(user_id, contact) if "emails" in changed else False
        if not payload:
            detail = "emails added" if added else "nothing to write"
            status = self.client.last_status if added else None
            return self._result(user_id, [], detail, written=added, status_code=status)
        fields: list[str] = [f for f in ("name", "phone", "external_id") if f in payload]
        fields += [
            k if k in PROFILE_USER_FIELDS else f"custom_attributes.{k}"
            for k in payload.get("user_fields", {})
        ]
        own = ""
        unheard = set(decode_list(command.options.get(OPTION_UNHEARD)))
        if current is None and not added and set(fields) <= unheard:
            # Nothing says Zendesk holds other values: what this sink's own write answered
            # is the newest it can know (a person's change since, still on its way, is newer
            # than our value, so leaving it in place is the right outcome too).
            current = self._written_users.get(user_id)
            own = " (this sink's own write set them; the link never heard them from Zendesk)"
        if current is None and not added and self.may_have_run(command):
            # Run again after a crash between Zendesk's answer and the commit (or a lost
            # answer): as for a case/update, a PUT of values the user holds would still count
            # as our write, so read first and write nothing when it holds them. A user gone
            # (None) is left to the PUT, whose 404 says so.
            current = await self.client.user(user_id)
        if current is not None and not added and _holds(current, payload):
            detail = f"user {user_id} already holds {', '.join(fields)}{own}"
            status = None if own else self.client.last_status  # own: no call in this command
            prints = _user_prints(current, fields)
            return self._result(user_id, prints, detail, written=False, status_code=status)
        user = await self.client.update_user(user_id, payload)
        self._wrote_user(user)
        detail = f"user {user_id} updated: {', '.join(fields)}"
        return self._result(user_id, _user_prints(user, fields), detail)
