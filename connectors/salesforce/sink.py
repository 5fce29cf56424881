"""The Salesforce sink: the command vocabulary of ``connectors.base.commands`` as REST calls.

| command        | API calls (M thread messages)                                               |
|----------------|-----------------------------------------------------------------------------|
| case/upsert    | requester: 1 SOQL by email, +1 Contact upsert when it missed; 1 Case upsert |
|                | by ``Deskstream_Link_Id__c`` = link id; ceil(M/200) CaseComment collection  |
|                | creates, in order. When it may have run before: +1 SOQL for the Case by     |
|                | link id first (found: no Case write) and +1 SOQL of its comments (only the  |
|                | thread messages not there yet are written)                                   |
| case/update    | 1 ``PATCH`` (0 when nothing to write); +1 SOQL without target; +1 ``GET``  |
|                | with ``expect.<field>`` options (compare, then write) or when it may have   |
|                | run before (no ``PATCH`` when the Case holds every value); the owner: +1    |
|                | SOQL on ``User`` for an email the agent directory does not know yet         |
| message/append | 1 CaseComment create; +1 SOQL without target; +1 SOQL of the 20 newest      |
|                | comments when it may have run before                                         |
| contact/upsert | 1 SOQL by email; found: 1 ``PATCH`` if anything differs; else 1 upsert by   |
|                | link id (a repeat finds what the first made)                                 |
| contact/update | 1 ``PATCH`` (0 when nothing to write)                                        |

Idempotency. The Case is upserted by its external id, the link id: a repeat finds the record
the first made, never a second ("Insert or Update (Upsert) a Record Using an External ID",
REST API Developer Guide). A Contact is looked up by email first (Salesforce's SOQL ``=`` on
text is case-insensitive): a Contact with that email is never duplicated; only a miss is
upserted by the contact's link id, so a repeated miss finds the first one's record. Comments
take no key: a command that may have run before (``attempt > 1``, or an attempt in this
process that failed without an answer, the contract in ``connectors.base.sink``) reads the
Case's comments and writes only the bodies not there yet (a create: the whole thread, matched
in order; an append: the newest ``_LANDED_LOOKBACK``). Residual window, as for Zendesk: a copy
written twice only when 20 or more comments landed between the lost answer and the retry; a
message not written only when a different command wrote the very same body (same author,
minute, platform and text) within those 20. A case/update sets values, so a repeat changes
nothing, yet an unchanged ``PATCH`` still saves the Case: a change event, and our write seen
twice. One that may have run before reads the Case first and writes nothing when it holds
every value.

A created thread's comments go in sObject Collections calls of at most 200 records,
``allOrNone`` per call, in thread order (results come back in request order). CaseComment is
plain text of at most 4,000 bytes: each body is the ``attribution`` line (Salesforce cannot
set a comment's author or time through the API) and the text, HTML reduced to its text, cut
with a note when longer. ``IsPublished`` is the message's ``public``.

Concurrent edits (case/update): with ``expect.<field>`` options the sink reads the Case first
and leaves out each expected field a person changed to a third value (reported in
``detail``). Salesforce offers no compare-and-set on a field value, so a change made between
that read and the write is overwritten (a window of one round trip; the sync stage sees the
person's change event afterwards and decides again).

Owners: a command's ``assignee`` (an agent named by email) becomes ``OwnerId``, the active
User with that email (``connectors.salesforce.agents``); nobody is the configured
``unassigned_owner_id`` queue, since a Case always has an owner. An email no User has, or an
unassign without that queue, is left out of the write (``skipped``, the reason in ``detail``).

Picklists: canonical statuses and priorities are spelled with the connector's ``status_map``
and ``priority_map`` (the first value standing for each); ``Origin`` is written only for the
channels the standard picklist has (email, phone, web). Custom fields: the canonical
``ai_handoff_reason`` goes to ``handoff_reason_field``; a key that is a custom field's API name
(``..__c``) is written as it is; other keys are left out and named in ``detail``.

``created_ids``: ``thread:<index>`` per thread message, ``message`` for an append, the
CaseComment ids. Fingerprints are spelled as the normaliser spells the change events
(``records.Vocabulary``): ``fingerprint("salesforce", case_id, field, value)`` for status,
priority, subject, ``custom_fields.<key>`` and ``message`` (each comment body); on the
Contact id for ``name``, ``phone`` and ``emails``.

Sources: REST API Developer Guide, "sObject Rows", "Insert or Update (Upsert) a Record Using
an External ID", "sObject Collections" ("Create Multiple Records": up to 200, ``allOrNone``),
"Query"; Object Reference "CaseComment" (CommentBody 4,000 bytes, IsPublished), "Case".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import httpx
from prometheus_client import Counter

from connectors.base.commands import (
    CONTACT_CREATED,
    CONTACT_MATCHED,
    CREATED_CONTACT,
    CREATED_MESSAGE,
    CREATED_OWNER,
    OPTION_EXPECT_PREFIX,
    OPTION_SOURCE_PLATFORM,
    attribution,
    thread_key,
)
from connectors.base.directory import AgentDirectory, OwnerWrite, owner_write
from connectors.base.fingerprints import FIELD_MESSAGE, fingerprint
from connectors.base.http import platform_http
from connectors.base.links import contact_link_id, normalise_email
from connectors.base.ratelimit import RateBudget
from connectors.base.settings import ConnectorSettings
from connectors.base.sink import Sink, SinkResult, command_data
from connectors.salesforce.agents import SalesforceAgents
from connectors.salesforce.auth import TOKEN_FAILURES, token_source_for
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.models import SaveResult
from connectors.salesforce.records import HANDOFF_REASON, Vocabulary, comment_text
from connectors.salesforce.session import TokenSource
from connectors.salesforce.settings import salesforce_settings
from connectors.salesforce.soql_text import id_literal, string_literal
from schemas.errors import (
    FatalAPIError,
    SkippableRecordError,
)
from schemas.models import (
    Case,
    CommandAction,
    Contact,
    EntityType,
    Message,
    SyncCommand,
)

__all__ = ["SalesforceSink"]

logger = logging.getLogger(__name__)

#: how many of a Case's newest comments a retried append looks through for its own
_LANDED_LOOKBACK = 20
#: scalar fields a case/update writes only after comparing, with ``expect.<field>``
_EXPECTABLE = ("status", "priority")
#: canonical channel → the standard Case Origin picklist value
_ORIGINS = {"email": "Email", "phone": "Phone", "voice": "Phone", "web": "Web"}
_CUSTOM_FIELD = "__c"


def _errors(results: Iterable[SaveResult]) -> str:
    return "; ".join(
        f"{e.status_code}: {e.message}" + (f" [{', '.join(e.fields)}]" if e.fields else "")
        for r in results
        for e in r.errors
    )[:500]


def _refused(what: str, results: Iterable[SaveResult]) -> FatalAPIError:
    return FatalAPIError(
        f"salesforce refused {what} ({_errors(results)}): fix the value or the field's "
        "permissions for the integration user, then `deskstream dlq retry` the command"
    )


def _owner_written(
    case_id: str, values: dict[str, Any], owner: OwnerWrite | None
) -> tuple[list[str], dict[str, str]]:
    """The owner's fingerprint and created id when a case/update's ``values`` carry it."""
    if owner is None or "OwnerId" not in values:
        return [], {}
    prints = [fingerprint("salesforce", case_id, "assignee", owner.email)]
    return prints, {CREATED_OWNER: str(values["OwnerId"])}


class SalesforceSink(Sink):
    platform: ClassVar[str] = "salesforce"
    client: SalesforceClient

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        http: httpx.AsyncClient | None = None,
        budget: RateBudget | None = None,
        tokens: TokenSource | None = None,
        token_failures: Counter | None = None,
    ) -> None:
        org = salesforce_settings(connector_id, settings)
        self.connector_id = connector_id
        self._owns_http = http is None
        self._http = http or platform_http(httpx.Timeout(30.0, connect=10.0))
        if tokens is None:
            failures = token_failures or TOKEN_FAILURES  # the worker exports it
            tokens = token_source_for(org, self._http, failures=failures)
        client = SalesforceClient(self._http, settings=org, tokens=tokens, budget=budget)
        super().__init__(connector_id=connector_id, client=client)
        self.vocabulary = Vocabulary(org, settings.service_account_id or None)
        self._link_field = org.link_field
        self._unassigned = org.unassigned_owner_id
        self.agents = AgentDirectory(
            SalesforceAgents(self.client, integration_user=settings.service_account_id or None),
            ttl=settings.agent_directory_ttl_seconds,
        )

    # -- the Sink contract -----------------------------------------------------------------

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def write(self, command: SyncCommand) -> SinkResult:
        """One command's calls (``api_calls`` is filled in by ``Sink.execute``, which counts)."""
        kind, action = command.target.entity_type, command.action
        if kind is EntityType.CASE and action is CommandAction.UPSERT:
            return await self._case_upsert(command)
        if kind is EntityType.CASE and action is CommandAction.UPDATE:
            return await self._case_update(command)
        if kind is EntityType.MESSAGE and action is CommandAction.APPEND:
            return await self._message_append(command)
        if kind is EntityType.CONTACT and action is CommandAction.UPSERT:
            return await self._contact_upsert(command)
        if kind is EntityType.CONTACT and action is CommandAction.UPDATE:
            return await self._contact_update(command)
        raise FatalAPIError(
            f"the Salesforce sink cannot {action.value} a {kind.value} (it executes case/upsert, "
            "case/update, message/append, contact/upsert, contact/update); the planner issued "
            "a command outside the vocabulary of connectors.base.commands"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _result(
        self, target: str | None, prints: list[str], detail: str, **more: Any
    ) -> SinkResult:
        status = more.pop("status_code", None)
        return SinkResult(target, status, 0, fingerprints=prints, detail=detail, **more)

    async def _query(self, soql: str) -> list[dict[str, Any]]:
        return await self.client.query_all(soql)

    async def _find_case(self, link_id: str) -> dict[str, Any] | None:
        handoff = self.vocabulary.settings.handoff_reason_field
        fields = f"Id, Subject, Status, Priority, {handoff}"
        rows = await self._query(
            f"SELECT {fields} FROM Case "  # noqa: S608 - names from settings, value escaped
            f"WHERE {self._link_field} = {string_literal(link_id)} ORDER BY CreatedDate, Id"
        )
        if len(rows) > 1:
            logger.warning(
                "salesforce cases share one link link=%s count=%s using=%s",
                link_id,
                len(rows),
                rows[0].get("Id"),
            )
        return rows[0] if rows else None

    async def _target_case(self, command: SyncCommand) -> str:
        if command.target.entity_id:
            return command.target.entity_id
        found = await self._find_case(command.link_id)
        if found is None:
            raise FatalAPIError(
                f"no Salesforce Case has {self._link_field} {command.link_id} yet: the "
                "case/upsert that creates it has not run; retry this command after it"
            )
        return str(found["Id"])

    async def _comments(self, case_id: str, *, newest: int | None = None) -> list[dict[str, Any]]:
        order = "CreatedDate DESC, Id DESC" if newest else "CreatedDate, Id"
        limit = f" LIMIT {newest}" if newest else ""
        return await self._query(
            "SELECT Id, CommentBody FROM CaseComment "  # noqa: S608 - an id literal only
            f"WHERE ParentId = {id_literal(case_id)} ORDER BY {order}{limit}"
        )

    # -- cases -----------------------------------------------------------------------------

    def _case_values(self, case: Case, fields: set[str] | None) -> tuple[dict[str, Any], list[str]]:
        """The Case fields to write (all for a create: ``fields`` None) and the canonical
        fields that go with them; custom fields Salesforce has no place for are named in
        the second list prefixed ``-``."""
        vocabulary = self.vocabulary
        values: dict[str, Any] = {}
        written: list[str] = []

        def wants(name: str) -> bool:
            return fields is None or name in fields

        if wants("status"):
            values["Status"] = vocabulary.salesforce_status(case.status)
            written.append("status")
        if wants("priority") and (case.priority is not None or fields is not None):
            values["Priority"] = (
                vocabulary.salesforce_priority(case.priority) if case.priority else None
            )
            written.append("priority")
        if wants("subject") and (case.subject or fields is not None):
            values["Subject"] = case.subject
            written.append("subject")
        origin = _ORIGINS.get((case.channel or "").lower())
        if fields is None and origin:
            values["Origin"] = origin
        for key, value in sorted(case.custom_fields.items()):
            if not (fields is None or {"custom_fields", f"custom_fields.{key}"} & fields):
                continue
            if key == HANDOFF_REASON:
                values[vocabulary.settings.handoff_reason_field] = value
            elif key.endswith(_CUSTOM_FIELD):
                values[key] = value
            else:
                written.append(f"-custom_fields.{key}")
                continue
            written.append(f"custom_fields.{key}")
        return values, written

    def _case_prints(self, case_id: str, case: Case, fields: Iterable[str]) -> list[str]:
        def value(name: str) -> Any:
            if name == "status":
                return case.status.value
            if name == "priority":
                return case.priority.value if case.priority else None
            if name == "subject":
                return case.subject
            return case.custom_fields.get(name.removeprefix("custom_fields."))

        return [fingerprint("salesforce", case_id, f, value(f)) for f in fields]

    def _found_prints(self, case_id: str, record: dict[str, Any], fields: list[str]) -> list[str]:
        """Fingerprints of what a found Case holds now (an earlier attempt wrote it; a person
        may have changed it since); none when it holds a value the maps do not name."""
        try:
            seen = self.vocabulary.case(record, case_id)
        except SkippableRecordError as exc:
            logger.warning("salesforce case values unreadable case=%s reason=%s", case_id, exc)
            return []
        return self._case_prints(case_id, seen, fields)

    async def _requester(self, contact: Contact | None) -> str | None:
        """The Contact of the case's customer: found by email, else upserted by its link id;
        None when the command names no email to match on."""
        if contact is None or not contact.emails:
            return None
        found = await self._find_contact(contact.emails)
        if found is not None:
            return str(found["Id"])
        # With an email the link id is the email's alone (the other names do not enter it).
        link = contact_link_id(contact.emails[0], platform="", connector_id="", entity_id="")
        saved = await self.client.upsert(
            "Contact", self._link_field, link, self.vocabulary.contact_values(contact, None)
        )
        if not saved.success or saved.id is None:
            raise _refused("the requester Contact", [saved])
        return saved.id

    async def _owner(self, command: SyncCommand, case: Case) -> OwnerWrite | None:
        """The ``OwnerId`` to write when the command changes the owner (None: it does not).
        A Case always has an owner: nobody is the ``unassigned_owner_id`` queue, or left
        out when none is configured."""
        if "assignee" not in command.changed_fields:
            return None
        owner = await owner_write(self.agents, case.assignee, platform="Salesforce")
        if owner.skipped is None and owner.agent_id is None:
            if self._unassigned is None:
                return OwnerWrite(
                    skipped="assignee left out: a Case cannot be without an owner; set "
                    f"DESKSTREAM_CONNECTORS__{self.connector_id}__UNASSIGNED_OWNER_ID to the "
                    "queue that takes unassigned Cases"
                )
            return OwnerWrite(self._unassigned, "")
        return owner

    async def _case_upsert(self, command: SyncCommand) -> SinkResult:
        case = command_data(command, Case)
        link = command.link_id
        thread = list(command.thread)
        values, fields = self._case_values(case, None)
        written = [f for f in fields if not f.startswith("-")]
        existing = await self._find_case(link) if self.may_have_run(command) else None
        owner_skipped: list[str] = []
        owner_id: str | None = None
        if existing is not None:
            case_id, fresh = str(existing["Id"]), False
            prints = self._found_prints(case_id, existing, written)
        else:
            contact_id = await self._requester(command.contact)
            if contact_id is not None:
                values["ContactId"] = contact_id
            owner = await self._owner(command, case)
            if owner is not None and owner.agent_id is not None:
                values["OwnerId"] = owner.agent_id
            saved = await self.client.upsert("Case", self._link_field, link, values)
            if not saved.success or saved.id is None:
                raise _refused(f"the Case for link {link}", [saved])
            case_id, fresh = saved.id, saved.created is not False
            prints = self._case_prints(case_id, case, written)
            if owner is not None and "OwnerId" in values:
                prints.append(fingerprint("salesforce", case_id, "assignee", owner.email))
                owner_id = values["OwnerId"]
            elif owner is not None and owner.skipped:
                owner_skipped.append(owner.skipped)
        platform = command.options.get(OPTION_SOURCE_PLATFORM, "generic")
        bodies = [comment_text(m, attribution(m, platform)) for m in thread]
        ids, made = await self._thread(case_id, thread, bodies, fresh=fresh)
        if owner_id is not None:
            ids[CREATED_OWNER] = owner_id
        prints += [fingerprint("salesforce", case_id, FIELD_MESSAGE, body) for body in bodies]
        left_out = [f[1:] for f in fields if f.startswith("-")]
        parts = [
            f"Case {case_id} {'created' if fresh else 'already mirrors the link'}",
            f"{made} of {len(thread)} comments written",
        ]
        if left_out:
            parts.append(f"no Salesforce field for {', '.join(left_out)}")
        return self._result(
            case_id,
            prints,
            "; ".join(parts + owner_skipped),
            written=fresh or made > 0,
            created_ids=ids,
            status_code=201 if fresh else 200,
            skipped=["assignee"] if owner_skipped else [],
        )

    async def _thread(
        self, case_id: str, thread: list[Message], bodies: list[str], *, fresh: bool
    ) -> tuple[dict[str, str], int]:
        """Thread position → CaseComment id, writing the comments not there yet, in order.
        A Case made just now has none; one found again is read and matched body by body."""
        ids: dict[str, str] = {}
        missing = list(range(len(thread)))
        if not fresh and thread:
            unused = [(str(c["Id"]), c.get("CommentBody")) for c in await self._comments(case_id)]
            missing = []
            for index, body in enumerate(bodies):
                match = next((i for i, (_, text) in enumerate(unused) if text == body), None)
                if match is None:
                    missing.append(index)
                else:
                    ids[thread_key(index)] = unused.pop(match)[0]
        if not missing:
            return ids, 0
        records = [
            {"ParentId": case_id, "IsPublished": thread[i].public, "CommentBody": bodies[i]}
            for i in missing
        ]
        results = await self.client.create_many("CaseComment", records, all_or_none=True)
        failed = [r for r in results if not r.success or r.id is None]
        if failed:
            raise _refused(f"comments on Case {case_id}", failed)
        for index, result in zip(missing, results, strict=True):
            ids[thread_key(index)] = str(result.id)
        return ids, len(missing)

    async def _case_update(self, command: SyncCommand) -> SinkResult:
        case = command_data(command, Case)
        changed = set(command.changed_fields)
        values, fields = self._case_values(case, changed)
        written = [f for f in fields if not f.startswith("-")]
        left = {f[1:]: "no Salesforce field for it" for f in fields if f.startswith("-")}
        owner = await self._owner(command, case)
        skipped = ["assignee"] if owner is not None and owner.skipped else []
        if owner is not None and owner.agent_id is not None:
            values["OwnerId"] = owner.agent_id
        if not values:
            detail = "nothing Salesforce takes among the changed fields"
            if owner is not None and owner.skipped:
                detail = owner.skipped
            return self._result(
                command.target.entity_id, [], detail, written=False, skipped=skipped
            )
        case_id = await self._target_case(command)
        expected = {
            f: command.options[OPTION_EXPECT_PREFIX + f]
            for f in _EXPECTABLE
            if f in written and OPTION_EXPECT_PREFIX + f in command.options
        }
        again = self.may_have_run(command)
        now: dict[str, Any] = {}
        if expected or again:
            now = await self.client.get("Case", case_id, fields=sorted({"Status", *values}))
        if again and all(now.get(name) == value for name, value in values.items()):
            # Run again after a crash between the answer and the commit (or a lost answer):
            # an unchanged PATCH still saves the Case (a change event, our write counted
            # twice), so a Case holding every value is left alone and reported as applied.
            owner_prints, ids = _owner_written(case_id, values, owner)
            held = written + (["assignee"] if owner_prints else [])
            reasons = [f"{name} left out: {why}" for name, why in left.items()]
            reasons += [owner.skipped] if owner is not None and owner.skipped else []
            detail = "; ".join([f"Case {case_id} already holds {', '.join(held)}", *reasons])
            prints = self._case_prints(case_id, case, written) + owner_prints
            return self._result(
                case_id,
                prints,
                detail,
                written=False,
                status_code=200,
                skipped=skipped,
                created_ids=ids,
            )
        if expected:
            current = {"status": self._spelled_status(now, case_id),
                       "priority": self._spelled_priority(now, case_id)}  # fmt: skip
            intended = {"status": case.status.value,
                        "priority": case.priority.value if case.priority else ""}  # fmt: skip
            for name, allowed in expected.items():
                if current[name] not in {*allowed.split(","), intended[name]}:
                    values.pop("Status" if name == "status" else "Priority")
                    written.remove(name)
                    left[name] = (
                        f"changed on Salesforce to {current[name] or 'none'} after the sync "
                        f"decided (expected {allowed or 'none'}); the sync stage decides again "
                        "when that change arrives"
                    )
        reasons = [f"{name} left out: {why}" for name, why in left.items()]
        if owner is not None and owner.skipped:
            reasons.append(owner.skipped)
        if not values:
            detail = "; ".join([f"Case {case_id} not updated", *reasons])
            return self._result(case_id, [], detail, written=False, skipped=skipped)
        await self.client.update("Case", case_id, values)
        owner_prints, ids = _owner_written(case_id, values, owner)
        prints = self._case_prints(case_id, case, written) + owner_prints
        written += ["assignee"] if owner_prints else []
        detail = "; ".join([f"Case {case_id} updated: {', '.join(written)}", *reasons])
        return self._result(
            case_id, prints, detail, status_code=204, skipped=skipped, created_ids=ids
        )

    def _spelled_status(self, record: dict[str, Any], case_id: str) -> str:
        """The canonical status a Case holds, as ``expect.status`` spells it; the org's own
        value when the map does not name it (it then matches no expectation)."""
        try:
            return self.vocabulary.status(record.get("Status"), case_id).value
        except SkippableRecordError:
            return str(record.get("Status"))

    def _spelled_priority(self, record: dict[str, Any], case_id: str) -> str:
        try:
            priority = self.vocabulary.priority(record.get("Priority"), case_id)
        except SkippableRecordError:
            return str(record.get("Priority"))
        return priority.value if priority else ""

    # -- messages --------------------------------------------------------------------------

    async def _message_append(self, command: SyncCommand) -> SinkResult:
        message = command_data(command, Message)
        case_id = await self._target_case(command)
        platform = command.options.get(OPTION_SOURCE_PLATFORM, "generic")
        body = comment_text(message, attribution(message, platform))
        prints = [fingerprint("salesforce", case_id, FIELD_MESSAGE, body)]
        if self.may_have_run(command):
            recent = await self._comments(case_id, newest=_LANDED_LOOKBACK)
            landed = next((str(c["Id"]) for c in recent if c.get("CommentBody") == body), None)
            if landed is not None:
                detail = f"comment {landed} on Case {case_id} is this append's earlier attempt"
                ids = {CREATED_MESSAGE: landed}
                return self._result(case_id, prints, detail, written=False, created_ids=ids)
        comment_id = await self.client.create(
            "CaseComment",
            {"ParentId": case_id, "IsPublished": message.public, "CommentBody": body},
        )
        kind = "published comment" if message.public else "internal comment"
        return self._result(
            case_id,
            prints,
            f"{kind} {comment_id} on Case {case_id}",
            created_ids={CREATED_MESSAGE: comment_id},
            status_code=201,
        )

    # -- contacts --------------------------------------------------------------------------

    async def _find_contact(self, emails: Iterable[str]) -> dict[str, Any] | None:
        wanted = list(dict.fromkeys(normalise_email(e) for e in emails if e.strip()))
        if not wanted:
            return None
        rows = await self._query(
            "SELECT Id, Email, FirstName, LastName, Name, Phone, "  # noqa: S608 - escaped
            f"{self._link_field} FROM Contact "
            f"WHERE Email IN ({', '.join(map(string_literal, wanted))}) ORDER BY CreatedDate, Id"
        )
        # The primary email's Contact first, then the oldest.
        rows.sort(key=lambda r: wanted.index(normalise_email(str(r.get("Email") or ""))))
        return rows[0] if rows else None

    def _contact_prints(
        self, contact_id: str, contact: Contact, fields: Iterable[str]
    ) -> list[str]:
        values = {
            "name": contact.name,
            "phone": contact.phone,
            "emails": [normalise_email(e) for e in contact.emails[:1]],
        }
        return [fingerprint("salesforce", contact_id, f, values[f]) for f in fields if f in values]

    async def _contact_upsert(self, command: SyncCommand) -> SinkResult:
        contact = command_data(command, Contact)
        found = await self._find_contact(contact.emails)
        if found is not None:
            contact_id = str(found["Id"])
            values = self.vocabulary.contact_values(contact, command.changed_fields)
            if not found.get(self._link_field):  # so a lookup by link finds it next time
                values[self._link_field] = command.link_id
            values = {k: v for k, v in values.items() if found.get(k) != v}
            fields = [f for f in ("name", "phone", "emails") if f in command.changed_fields]
            prints = self._contact_prints(contact_id, contact, fields)
            matched = {CREATED_CONTACT: CONTACT_MATCHED}
            if not values:
                detail = f"Contact {contact_id} (matched by email) already holds the values"
                return self._result(contact_id, prints, detail, written=False, created_ids=matched)
            await self.client.update("Contact", contact_id, values)
            detail = f"Contact {contact_id} (matched by email) updated: {', '.join(values)}"
            return self._result(contact_id, prints, detail, status_code=204, created_ids=matched)
        values = self.vocabulary.contact_values(contact, None)
        saved = await self.client.upsert("Contact", self._link_field, command.link_id, values)
        if not saved.success or saved.id is None:
            raise _refused(f"the Contact for link {command.link_id}", [saved])
        prints = self._contact_prints(saved.id, contact, ("name", "phone", "emails"))
        created = saved.created is not False
        verb = "created" if created else "found by link id and updated"
        made = {CREATED_CONTACT: CONTACT_CREATED if created else CONTACT_MATCHED}
        return self._result(
            saved.id, prints, f"Contact {saved.id} {verb}", status_code=201, created_ids=made
        )

    async def _contact_update(self, command: SyncCommand) -> SinkResult:
        contact = command_data(command, Contact)
        contact_id = command.target.entity_id
        if not contact_id:
            raise FatalAPIError(
                "contact/update without target.entity_id: contact/upsert finds the Contact first"
            )
        values = self.vocabulary.contact_values(contact, command.changed_fields)
        if not values:
            return self._result(contact_id, [], "nothing Salesforce takes", written=False)
        await self.client.update("Contact", contact_id, values)
        fields = [f for f in ("name", "phone", "emails") if f in command.changed_fields]
        prints = self._contact_prints(contact_id, contact, fields)
        detail = f"Contact {contact_id} updated: {', '.join(values)}"
        return self._result(contact_id, prints, detail, status_code=204)
