"""Commands into Intercom: the write side of the Intercom ⇄ Zendesk flows.

| command          | API calls                                                                   |
|------------------|-----------------------------------------------------------------------------|
| message/append   | 1 reply (comment, or note when private); +1 ``GET`` conversation first when |
|                  | the command may have landed before (see Idempotency)                        |
| case/update      | status: 1 ``POST parts`` (close / open / snooze; pending unconfigured: 0);  |
|                  | tags: +1 ``GET`` conversation (unless the status answer gave it), +1        |
|                  | ``GET /tags`` on a cold name cache, +1 ``POST /tags`` per name Intercom     |
|                  | lacks, +1 per tag added or removed; subject, custom fields: +1 ``PUT``;     |
|                  | assignee: 1 ``POST parts`` (+1 ``GET /admins`` on a cold agent cache).      |
|                  | When it may have run before: +1 ``GET`` first, then only what differs       |
| case/upsert with | ≤1 ``find_by_external_id`` + 1 contact search per 15 emails, 1 conversation |
| a Message (ack)  | search (sent already?), 1 ``POST /messages``; no contact: lookups only      |
| contact/update   | 1 ``PUT`` (0 when nothing to write); may have run before: +1 ``GET`` first, |
|                  | no ``PUT`` of what the contact holds                                        |
| contact/upsert   | lookups as above, then 1 ``PUT`` if anything differs, or 1 ``POST`` create  |
|                  | (+1 ``PUT`` when a 409 names the record that exists)                        |

Writes: replies and notes by Deskstream's bot admin (``service_account_id``) under an
``attribution`` line naming the source platform (``source_platform`` option); attachments as
``attachment_urls`` (Intercom fetches and re-hosts them; past ten, the rest are listed as links
in the body, never dropped). Statuses: closed/solved close, open/new open, pending/on_hold
snooze only when configured (``snooze_pending_s`` or the ``snooze_seconds`` option), else stay.
Tags are deltas by name. Priority is not writable through the 2.14 API: reported in the result's
detail. The owner (``assignee``, an agent named by email) is an ``assignment`` part (``POST
/conversations/{id}/parts``, ``assign_conversation_request``: ``type: admin``, ``admin_id``
the bot, ``assignee_id`` the admin whose email it is, ``"0"`` for nobody); an email no admin
has is left out (``skipped``, the reason in ``detail``). A ``group`` change (an AI hand-off's
routing, the team id in the ``group_id`` option) is an assignment part with ``type: team``,
skipped on a repeat whose conversation holds that team already. Admins come from one ``GET /admins``
per cache period (``connectors.intercom.agents``). The acknowledgement of a new ticket from a
known customer is an admin-initiated message that opens a conversation; no contact in
Intercom, no message.
``created_ids`` and fingerprints use the sync stage's names (``message``; ``status``, ``tags``
for every intermediate list, ``subject``, ``custom_fields.<name>``; on contacts ``name``,
``phone``, ``plan``, ``custom_attributes.<key>``), computed from what Intercom answered with the
normaliser's own conversions.

Idempotency and ambiguous writes (the write applied, the answer lost; the contract is in
``connectors.base.sink``). Intercom takes no idempotency key. Replies and notes: checking the
conversation before every reply would cost a second call per synced message (2.0 calls per
change against the 1.1 target), so the sink checks only when a duplicate is possible: a
command on its second or later attempt (the runner hands ``attempt >= 2`` to anything that
may have run before: redelivery, crash, dead letter re-sent), or one whose earlier attempt in
this process failed without an answer (timeout, 5xx, reset). The check reads the conversation
(its 500 newest parts) and skips the reply when a part by Deskstream's bot admin of the same
type carries the same text. ``check_appends="always"`` checks every reply at twice the calls.
Acknowledgements are rare and customer-visible, so they are always checked (one search of the
bot's admin-initiated conversations with the contact over the last seven days). Contacts are
looked up (external id, then every email) before a create, and a 409 names the one that
exists. Tag writes are idempotent and silent (a tag already on the conversation is not added
again; a removed one answers 404, taken as done). A close, open or snooze is idempotent but not
silent (a second one adds a part and a notification), nor is an attribute update: a
case/update that may have run before reads the conversation first and writes only what it
does not hold yet, reporting what it holds as applied. Limits, measured by
``bench/ambiguous_writes.py``: a reply written twice only when 500 or more parts landed
between the lost answer and the retry; a reply not written only when a *different* command
posts the very same text (attribution line included: same author, minute and platform) to
the same conversation. A person's part never matches: it is not the bot's.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import httpx

from connectors.base.commands import (
    CONTACT_CREATED,
    CONTACT_MATCHED,
    CREATED_CONTACT,
    CREATED_MESSAGE,
    CREATED_OWNER,
    CREATED_VERSION,
    OPTION_GROUP_ID,
    OPTION_SOURCE_PLATFORM,
    OPTION_TAGS_ADDED,
    OPTION_TAGS_REMOVED,
    attribution,
    decode_list,
)
from connectors.base.directory import AgentDirectory, OwnerWrite, owner_write
from connectors.base.fingerprints import FIELD_MESSAGE, fingerprint
from connectors.base.http import current_count
from connectors.base.links import normalise_email
from connectors.base.ratelimit import register_account_budget
from connectors.base.settings import ConnectorSettings
from connectors.base.sink import Sink, SinkResult, command_data
from connectors.intercom import models as ic
from connectors.intercom.agents import IntercomAgents
from connectors.intercom.client import ConflictError, IntercomClient
from schemas.errors import ConfigurationError, FatalAPIError
from schemas.models import (
    Case,
    CaseStatus,
    CommandAction,
    Contact,
    EntityType,
    Message,
    SyncCommand,
)

__all__ = ["OPTION_SNOOZE_SECONDS", "IntercomSink"]

logger = logging.getLogger(__name__)

#: command option: snooze a conversation this long when its case goes pending / on hold
OPTION_SNOOZE_SECONDS = "snooze_seconds"
_MAX_ATTACHMENTS = 10
#: how far back an earlier acknowledgement of the same ticket can be
_ACK_LOOKBACK_S = 7 * 24 * 3600
_CLOSE = {CaseStatus.CLOSED, CaseStatus.SOLVED}
_OPEN = {CaseStatus.OPEN, CaseStatus.NEW}
_CONTACT_FIELDS = ("name", "phone", "plan", "custom_attributes")


@dataclass
class _Outcome:
    target: str | None
    written: bool
    detail: str
    fingerprints: list[str] = field(default_factory=list)
    created_ids: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _conversation_holds(conversation: ic.Conversation, update: dict[str, object]) -> bool:
    """Whether ``conversation`` already has the title and attributes of ``update``."""
    if "title" in update and conversation.title != update["title"]:
        return False
    wanted = update.get("custom_attributes")
    held = ic.custom_values(conversation.custom_attributes)
    return not isinstance(wanted, dict) or all(
        held.get(k) == v for k, v in ic.custom_values(wanted).items()
    )


def _target_id(command: SyncCommand) -> str:
    if not command.target.entity_id:
        raise FatalAPIError(
            f"{command.target.entity_type.value}/{command.action.value} command "
            f"{command.command_id} names no Intercom record; Intercom records carry no link id "
            "to find them by, so the link must be resolved before commands are issued"
        )
    return command.target.entity_id


class IntercomSink(Sink):
    platform: ClassVar[str] = "intercom"
    client: IntercomClient

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        http: httpx.AsyncClient | None = None,
        snooze_pending_s: int | None = None,
        plan_attribute: str = "plan",
        check_appends: Literal["on_retry", "always"] = "on_retry",
        now: Callable[[], float] = time.time,
    ) -> None:
        if not settings.service_account_id:
            raise ConfigurationError(
                f"connector {connector_id!r} has no service_account_id; set "
                f"DESKSTREAM_CONNECTORS__{connector_id}__SERVICE_ACCOUNT_ID to the id of "
                "Deskstream's bot admin in Intercom (GET /admins lists them)"
            )
        super().__init__(
            connector_id=connector_id,
            client=IntercomClient.from_settings(settings, http=http, now=now),
        )
        register_account_budget(connector_id, self.client.budget)  # the polls yield to it
        self._admin = settings.service_account_id
        self.agents = AgentDirectory(
            IntercomAgents(self.client, bot_admin_id=self._admin),
            ttl=settings.agent_directory_ttl_seconds,
        )
        self._snooze_s = snooze_pending_s
        self._plan = plan_attribute
        self._check_always = check_appends == "always"
        self._now = now

    async def write(self, command: SyncCommand) -> SinkResult:
        outcome = await self._handler(command)(command)
        count = current_count()  # Sink.execute counts this command's calls
        return SinkResult(
            target_entity_id=outcome.target,
            status_code=count.last_status if count is not None else None,
            api_calls=0,  # filled in by Sink.execute
            written=outcome.written,
            fingerprints=outcome.fingerprints,
            detail=outcome.detail,
            created_ids=outcome.created_ids,
            skipped=outcome.skipped,
        )

    def _handler(self, command: SyncCommand) -> Callable[[SyncCommand], Awaitable[_Outcome]]:
        kind, action, data = command.target.entity_type, command.action, command.data
        handlers = {
            (EntityType.MESSAGE, CommandAction.APPEND): self._append,
            (EntityType.CASE, CommandAction.UPDATE): self._update_case,
            (EntityType.CONTACT, CommandAction.UPDATE): self._update_contact,
            (EntityType.CONTACT, CommandAction.UPSERT): self._upsert_contact,
        }
        if (kind, action) == (EntityType.CASE, CommandAction.UPSERT):
            if isinstance(data, Message):
                return self._acknowledge
            if isinstance(data, Case) and command.target.entity_id:
                return self._update_case  # the mirror exists already: only its fields change
        elif (kind, action) in handlers:
            return handlers[(kind, action)]
        raise FatalAPIError(
            f"the Intercom sink does not execute {kind.value}/{action.value} with "
            f"{type(data).__name__} (command {command.command_id}); Intercom is not a target "
            "of that flow, so change the rule that routes it here"
        )

    # -- message/append ---------------------------------------------------------------------

    def _compose(self, message: Message, origin: str) -> tuple[str, list[str]]:
        """The reply body (attribution line first) and the attachment URLs to send."""
        blocks = [f"<p><em>{html.escape(attribution(message, origin))}</em></p>"]
        if message.body_html:
            blocks.append(message.body_html)
        elif message.body_text:
            blocks.append(ic.text_to_html(message.body_text))
        attachments = message.attachments
        for extra in attachments[_MAX_ATTACHMENTS:]:
            url = html.escape(extra.source_url)
            blocks.append(f'<p>{html.escape(extra.name)}: <a href="{url}">{url}</a></p>')
        return "".join(blocks), [a.source_url for a in attachments[:_MAX_ATTACHMENTS]]

    def _ours(self, conversation: ic.Conversation, text: str, *, note: bool) -> str | None:
        """The id of the latest part by our bot admin with this text, if any."""
        part_type = "note" if note else "comment"
        for part in reversed(conversation.parts):
            author = part.author
            if (
                author is not None
                and author.type == "admin"
                and author.id == self._admin
                and part.part_type == part_type
                and ic.html_to_text(part.body) == text
            ):
                return part.id
        return None

    async def _append(self, command: SyncCommand) -> _Outcome:
        cid = _target_id(command)
        message = command_data(command, Message)
        origin = command.options.get(OPTION_SOURCE_PLATFORM, "generic")
        body, urls = self._compose(message, origin)
        text = ic.html_to_text(body)
        fingerprints = [fingerprint(self.platform, cid, FIELD_MESSAGE, text)]
        note = not message.public
        if self._check_always or self.may_have_run(command):
            existing = self._ours(await self.client.get_conversation(cid), text, note=note)
            if existing is not None:
                return _Outcome(
                    cid,
                    False,
                    "already in the conversation (an earlier attempt wrote it)",
                    fingerprints,
                    {CREATED_MESSAGE: existing},
                )
        conversation = await self.client.reply_as_admin(
            cid, admin_id=self._admin, body=body, note=note, attachment_urls=urls
        )
        part_id = self._ours(conversation, text, note=note)
        created = {CREATED_MESSAGE: part_id} if part_id else {}
        return _Outcome(
            cid, True, "posted a note" if note else "posted a reply", fingerprints, created
        )

    # -- case/update ------------------------------------------------------------------------

    def _snooze_until(self, command: SyncCommand) -> int | None:
        raw = command.options.get(OPTION_SNOOZE_SECONDS)
        seconds = int(raw) if raw and raw.isdigit() else self._snooze_s
        return int(self._now()) + seconds if seconds else None

    async def _update_case(self, command: SyncCommand) -> _Outcome:
        cid = _target_id(command)
        case = command_data(command, Case)
        fields = set(command.changed_fields)
        fps: list[str] = []
        done: list[str] = []
        version: dict[str, str] = {}
        wrote = False
        # Run again after a crash between Intercom's answer and the commit (or a lost answer):
        # a close, open or snooze of a conversation already there adds a part and sends a
        # notification all the same, and an attribute update is a write, so the conversation
        # is read first and only what it does not hold yet is written.
        held = await self.client.get_conversation(cid) if self.may_have_run(command) else None
        snapshot: ic.Conversation | None = None
        if "status" in fields:
            snapshot, wrote, note = await self._status(command, cid, case.status, held)
            done += [note] if note else []
            if snapshot is not None:
                status = ic.case_status(snapshot.state, snapshot.open).value
                fps.append(fingerprint(self.platform, cid, "status", status))
                done.append(f"status={status}")
                parts = [int(p.id) for p in snapshot.parts if p.id.isdigit()]
                if parts:  # orders this write against Intercom's same-second reports
                    version[CREATED_VERSION] = str(max(parts))
        added = decode_list(command.options.get(OPTION_TAGS_ADDED))
        removed = decode_list(command.options.get(OPTION_TAGS_REMOVED))
        if added or removed:
            # The tag fingerprint is the whole list; the tag endpoints answer with one tag,
            # so the list comes from the conversation (the status answer, or one read).
            snapshot = snapshot or held or await self.client.get_conversation(cid)
            tag_fps, summary = await self._tags(cid, snapshot.tag_list, added, removed)
            if summary:
                fps, wrote = fps + tag_fps, True
                done.append(summary)
            elif held is not None:  # a repeat: the list it holds is what was written
                fps.append(fingerprint(self.platform, cid, "tags", snapshot.tag_names))
        attributes = {
            k: v
            for k, v in case.custom_fields.items()
            if "custom_fields" in fields or f"custom_fields.{k}" in fields
        }
        update: dict[str, object] = {"custom_attributes": attributes} if attributes else {}
        if "subject" in fields and case.subject:
            update["title"] = case.subject
        if update:
            if held is not None and _conversation_holds(held, update):
                after = held
            else:
                after = await self.client.update_conversation(cid, update)
                wrote = True
                done.append("attributes")
            values = ic.custom_values(after.custom_attributes)
            fps += [
                fingerprint(self.platform, cid, f"custom_fields.{k}", values.get(k))
                for k in sorted(attributes)
            ]
            if "title" in update:
                subject = ic.case_from(after, bot_admin_id=self._admin).subject
                fps.append(fingerprint(self.platform, cid, "subject", subject))
        skipped: list[str] = []
        if "assignee" in fields:
            owner = await owner_write(self.agents, case.assignee, platform="Intercom")
            if owner.skipped:
                done.append(owner.skipped)
                skipped.append("assignee")
            else:
                snapshot, moved = await self._assign(cid, owner, held)
                wrote = wrote or moved
                fps.append(fingerprint(self.platform, cid, "assignee", owner.email))
                done.append(f"assignee={owner.email or 'nobody'}")
                if owner.agent_id:
                    version[CREATED_OWNER] = owner.agent_id
                parts = [int(p.id) for p in snapshot.parts if p.id.isdigit()]
                if parts:
                    version[CREATED_VERSION] = str(max(parts))
        team = command.options.get(OPTION_GROUP_ID, "")
        if "group" in fields and team.isdigit():
            if held is not None and held.team_assignee_id == team:
                done.append(f"team {team} (held already)")
            else:
                await self.client.manage(
                    cid, "assignment", admin_id=self._admin, type="team", assignee_id=team
                )
                wrote = True
                done.append(f"assigned to team {team}")
        if "priority" in fields:
            done.append("priority not writable through the Intercom API")
        if held is not None and fps and not wrote:
            done.append("the conversation already holds every value (an earlier attempt)")
        detail = "; ".join(done) or "nothing to change"
        return _Outcome(cid, wrote, detail, fps, version, skipped)

    async def _assign(
        self, cid: str, owner: OwnerWrite, held: ic.Conversation | None
    ) -> tuple[ic.Conversation, bool]:
        """Assign to ``owner``'s admin (nobody: unassign): the conversation after it, and
        whether anything was written. ``held``: as read before a repeat; an assignment it
        has already is not made again (Intercom would add a part and notify)."""
        if held is not None:
            assigned = held.admin_assignee_id if held.admin_assignee_id not in ("", "0") else None
            if assigned == owner.agent_id:
                return held, False
        after = await self.client.assign(cid, admin_id=self._admin, assignee_id=owner.agent_id)
        return after, True

    async def _status(
        self, command: SyncCommand, cid: str, status: CaseStatus, held: ic.Conversation | None
    ) -> tuple[ic.Conversation | None, bool, str | None]:
        """Close, open or snooze: (the conversation after it, whether anything was written, a
        note). ``held``: the conversation as read before a repeat; a state it is in already
        is not written again (Intercom would add a part and notify all the same)."""
        if status in _CLOSE:
            state = "closed"
        elif status in _OPEN:
            state = "open"
        else:
            until = self._snooze_until(command)
            if until is None:
                return None, False, f"status {status.value} left as is (snoozing not configured)"
            if held is not None and held.state == "snoozed":
                return held, False, None
            return await self.client.snooze(cid, admin_id=self._admin, until=until), True, None
        if held is not None and held.state == state:
            return held, False, None
        write = self.client.close if state == "closed" else self.client.reopen
        return await write(cid, admin_id=self._admin), True, None

    async def _tags(
        self, cid: str, current: list[ic.Tag], added: list[str], removed: list[str]
    ) -> tuple[list[str], str | None]:
        """Apply the deltas; the fingerprints of every intermediate tag list (each tag write
        sends its own notification) and a summary, or None when there was nothing to do."""
        names = [t.name for t in current if t.name]
        to_add = [t for t in added if t not in names]
        # Removal uses the ids on the conversation itself: no name lookup needed.
        to_remove = [t for t in current if t.name in removed]
        fps: list[str] = []
        ids = await self.client.tag_ids(to_add, create=True) if to_add else {}
        for name in to_add:
            await self.client.add_tag(cid, tag_id=ids[name], admin_id=self._admin)
            names.append(name)
            fps.append(fingerprint(self.platform, cid, "tags", names))
        for tag in to_remove:
            await self.client.remove_tag(cid, tag_id=tag.id, admin_id=self._admin)
            names.remove(tag.name or "")
            fps.append(fingerprint(self.platform, cid, "tags", names))
        return fps, (f"tags +{len(to_add)} -{len(to_remove)}" if fps else None)

    # -- contacts ---------------------------------------------------------------------------

    async def _find_contact(self, identity: Contact) -> ic.Contact | None:
        """External id first (unique in Intercom), then every email in one search; the
        primary email's match wins over a secondary one's."""
        if identity.external_id:
            found = await self.client.find_contact_by_external_id(identity.external_id)
            if found is not None:
                return found
        emails = [normalise_email(e) for e in identity.emails if e.strip()]
        if not emails:
            return None
        matches = [
            c
            for c in await self.client.search_contacts_by_email(emails)
            if c.email and normalise_email(c.email) in emails
        ]
        matches.sort(key=lambda c: (emails.index(normalise_email(c.email or "")), c.role != "user"))
        return matches[0] if matches else None

    def _contact_payload(
        self, data: Contact, fields: set[str], before: ic.Contact | None
    ) -> dict[str, object]:
        wanted = fields or {f for f in _CONTACT_FIELDS if getattr(data, f)}
        payload: dict[str, object] = {}
        for name in ("name", "phone"):
            value = getattr(data, name)
            if name in wanted and (before is None or getattr(before, name) != value):
                payload[name] = value
        attributes: dict[str, object] = {}
        if "plan" in wanted:
            attributes[self._plan] = data.plan
        for key, value in data.custom_attributes.items():
            if "custom_attributes" in wanted or f"custom_attributes.{key}" in wanted:
                attributes[key] = value
        old = (before.custom_attributes or {}) if before is not None else None
        attributes = {k: v for k, v in attributes.items() if old is None or old.get(k) != v}
        if attributes:
            payload["custom_attributes"] = attributes
        return payload

    def _contact_fingerprints(self, after: ic.Contact, payload: dict[str, object]) -> list[str]:
        """On the values Intercom answered, named as the normaliser and the sync stage name
        them: ``name``, ``phone``, ``plan``, ``custom_attributes.<key>``."""
        canonical = ic.contact_from(after, plan_attribute=self._plan)
        values: dict[str, object] = {f: getattr(canonical, f) for f in ("name", "phone")}
        written: list[str] = [f for f in ("name", "phone") if f in payload]
        attributes = payload.get("custom_attributes")
        for key in attributes if isinstance(attributes, dict) else {}:
            written.append(f"custom_attributes.{key}")
            values[written[-1]] = canonical.custom_attributes.get(key)
            if key == self._plan:
                written.append("plan")
                values["plan"] = canonical.plan
        return [fingerprint(self.platform, after.id, f, values[f]) for f in written]

    async def _write_contact(
        self, contact_id: str, data: Contact, fields: set[str], before: ic.Contact | None
    ) -> _Outcome:
        payload = self._contact_payload(data, fields, before)
        if not payload:
            # What it holds, as applied (as Zendesk's sink answers): the echo of an earlier
            # attempt's write is then known for ours.
            wanted = self._contact_payload(data, fields, None)
            held = [] if before is None else self._contact_fingerprints(before, wanted)
            return _Outcome(contact_id, False, "the contact already has these values", held)
        after = await self.client.update_contact(contact_id, payload)
        fps = self._contact_fingerprints(after, payload)
        return _Outcome(contact_id, True, f"updated {', '.join(sorted(payload))}", fps)

    async def _update_contact(self, command: SyncCommand) -> _Outcome:
        data = command_data(command, Contact)
        contact_id = _target_id(command)
        # Run again after a crash between Intercom's answer and the commit (or a lost answer):
        # a PUT of values the contact holds would still count as our write, so read first and
        # write only what it lacks.
        before = await self.client.get_contact(contact_id) if self.may_have_run(command) else None
        return await self._write_contact(contact_id, data, set(command.changed_fields), before)

    async def _upsert_contact(self, command: SyncCommand) -> _Outcome:
        data = command_data(command, Contact)
        hint = command.contact
        identity = data.model_copy(
            update={
                "emails": list(dict.fromkeys([*data.emails, *(hint.emails if hint else [])])),
                "external_id": data.external_id or (hint.external_id if hint else None),
            }
        )
        fields = set(command.changed_fields)
        matched = {CREATED_CONTACT: CONTACT_MATCHED}
        found = await self._find_contact(identity)
        if found is not None:
            return replace(
                await self._write_contact(found.id, data, fields, found), created_ids=matched
            )
        if not identity.emails and not identity.external_id:
            raise FatalAPIError(
                f"contact/upsert command {command.command_id} has neither an email nor an "
                "external id; Intercom cannot create a user without one"
            )
        payload = self._contact_payload(data, set(), None)
        payload |= {"role": "user", "external_id": identity.external_id}
        if identity.emails:
            payload["email"] = identity.emails[0]
        try:
            created = await self.client.create_contact({k: v for k, v in payload.items() if v})
        except ConflictError as exc:
            # Created meanwhile (another worker, or our own earlier attempt): write to it.
            existing = exc.existing_id or getattr(await self._find_contact(identity), "id", None)
            if existing is None:
                raise
            written = await self._write_contact(existing, data, fields, None)
            return replace(written, created_ids=matched)
        return _Outcome(
            created.id,
            True,
            "created the contact",
            self._contact_fingerprints(created, payload),
            {CREATED_CONTACT: CONTACT_CREATED},
        )

    # -- case/upsert with a message: the acknowledgement ------------------------------------

    async def _acknowledge(self, command: SyncCommand) -> _Outcome:
        message = command_data(command, Message)
        if not message.public or command.contact is None:
            raise FatalAPIError(
                f"acknowledgement command {command.command_id} needs a public message and the "
                "requester in command.contact; fix the rule that builds it"
            )
        body = message.body_html or ic.text_to_html(message.body_text or "")
        text = ic.html_to_text(body)
        if not text:
            raise FatalAPIError(f"acknowledgement command {command.command_id} has no text")
        contact = await self._find_contact(command.contact)
        if contact is None:
            return _Outcome(None, False, "no Intercom contact matches the requester; not sent")
        since = int(command.issued_at.timestamp()) - _ACK_LOOKBACK_S
        earlier = await self.client.search_conversations(
            {
                "operator": "AND",
                "value": [
                    {"field": "contact_ids", "operator": "=", "value": contact.id},
                    {"field": "source.author.id", "operator": "=", "value": self._admin},
                    {"field": "source.delivered_as", "operator": "=", "value": "admin_initiated"},
                    {"field": "created_at", "operator": ">", "value": since},
                ],
            }
        )
        for conversation in earlier:
            source = conversation.source
            if source is not None and ic.html_to_text(source.body) == text:
                fp = fingerprint(self.platform, conversation.id, FIELD_MESSAGE, text)
                return _Outcome(conversation.id, False, "acknowledgement already sent", [fp])
        sent = await self.client.send_admin_message(admin_id=self._admin, to=contact, body=body)
        cid = sent.conversation_id
        fps = [fingerprint(self.platform, cid, FIELD_MESSAGE, text)] if cid else []
        return _Outcome(cid, True, "sent an acknowledgement", fps, {CREATED_MESSAGE: sent.id})
