"""The Salesforce normaliser: a raw delivery (``connectors.salesforce.raw``) into canonical
events. Case → Case, Contact → Contact, CaseComment → Message.

Change events (``kind: change``):

- CREATE: the event carries every populated field: the record, all of them changed.
- UPDATE: ``changedFields`` mapped to canonical names (``Status`` → ``status``,
  ``OwnerId`` → ``assignee``, the hand-off field → ``custom_fields.ai_handoff_reason``, ...);
  fields Deskstream does not sync are dropped, and an update of nothing synced (only
  ``LastModifiedDate``, ``Description``) is no event. The record is ``current`` with the
  event's values on top; without ``current`` the delivery is quarantined (the source must
  attach it, see ``raw``).
- UNDELETE: the record is back; an update naming every populated field.
- DELETE: no data. GAP_* events never get here: the subscribers turn them into re-reads.

Read records (``kind: record``): a polled CaseComment is a new message (an edited one, with
``LastModifiedDate`` after ``CreatedDate``, an update of ``body`` and ``public``); a
reconciled or re-read Case or Contact is an update naming the canonical fields of its
``changed`` list: none for a plain copy (the sync stage compares it with what it knew), the
differing ones when a reconciliation found the record changed since its previous read (the
change event was lost; the sync stage must take them as changes, since Salesforce otherwise
reports every status and priority change explicitly).

Echoes (layer one): a change whose ``changeOrigin`` carries our ``client=<call_options_client>``
(``Sforce-Call-Options`` on every write of ours) or whose ``commitUser`` is the integration
user (``service_account_id``), and a comment the integration user created, have actor kind
INTEGRATION.

Links: a Case or Contact whose link field (``Deskstream_Link_Id__c``) holds a link id carries
that link (Deskstream created it as another record's mirror); otherwise a Case derives its own
(``case_link_id``) and a Contact its email's (``contact_link_id``). A comment carries its
Case's, read as ``Parent.Deskstream_Link_Id__c``.

Sources: "ChangeEventHeader Fields" (changeType, changedFields, changeOrigin, commitUser),
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm
; "Call Options Header",
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_calloptions.htm .
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from connectors.base.links import case_link_id, contact_link_id, is_link_id
from connectors.base.normalize import Normaliser, event_id
from connectors.base.settings import ConnectorSettings
from connectors.salesforce.raw import ChangeBody, RecordBody, decode_body
from connectors.salesforce.records import Vocabulary, parse_time
from connectors.salesforce.settings import salesforce_settings
from schemas.errors import SkippableRecordError
from schemas.models import (
    Actor,
    ActorKind,
    EntityData,
    EntityType,
    Envelope,
    Op,
    Platform,
    RawDelivery,
    Source,
)

__all__ = ["SalesforceNormaliser"]

logger = logging.getLogger(__name__)

_ENTITIES = {
    "Case": EntityType.CASE,
    "Contact": EntityType.CONTACT,
    "CaseComment": EntityType.MESSAGE,
}
_OPS = {"CREATE": Op.CREATE, "UPDATE": Op.UPDATE, "UNDELETE": Op.UPDATE, "DELETE": Op.DELETE}


@dataclass
class _Change:
    entity_type: EntityType
    entity_id: str
    actor: Actor
    op: Op
    occurred_at: datetime
    changed: list[str] = field(default_factory=list)
    data: EntityData = None
    link_id: str = ""
    version: str | None = None


def _populated(record: Mapping[str, Any]) -> list[str]:
    return [name for name, value in record.items() if value is not None and name != "attributes"]


class SalesforceNormaliser(Normaliser):
    platform: ClassVar[str] = "salesforce"

    def __init__(self, *, connector_id: str, settings: ConnectorSettings) -> None:
        super().__init__(connector_id=connector_id, settings=settings)
        org = salesforce_settings(connector_id, settings)
        self._vocabulary = Vocabulary(org, settings.service_account_id or None)
        self._our_client = f"client={org.call_options_client}"
        if not settings.service_account_id:
            logger.warning(
                "salesforce connector has no service_account_id connector=%s: our own "
                "changes are recognised by changeOrigin only, our comments by fingerprints",
                connector_id,
            )

    # -- entry point -----------------------------------------------------------------------

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        body = decode_body(delivery.body)
        connector = delivery.connector_id
        if isinstance(body, ChangeBody):
            change = self._change(connector, body)
            event_type = f"{body.header.entity_name}.{body.header.change_type}"
        else:
            change = self._read(connector, body)
            event_type = f"{body.sobject}.{body.read}"
        if change is None:
            return []
        return [
            Envelope(
                event_id=event_id(connector, delivery.delivery_id),
                source=Source(
                    platform=Platform.SALESFORCE,
                    connector_id=connector,
                    entity_type=change.entity_type,
                    entity_id=change.entity_id,
                    event_type=event_type,
                    source_event_id=delivery.delivery_id,
                    source_version=change.version,
                    actor=change.actor,
                    occurred_at=change.occurred_at,
                ),
                op=change.op,
                changed_fields=change.changed,
                data=change.data,
                link_id=change.link_id,
                ingested_at=delivery.received_at,
            )
        ]

    # -- pieces ----------------------------------------------------------------------------

    @staticmethod
    def _entity(sobject: str) -> EntityType:
        entity = _ENTITIES.get(sobject)
        if entity is None:
            raise SkippableRecordError(
                f"Salesforce {sobject[:80]} records are not synced (Case, Contact, CaseComment "
                "are); subscribe the connector to those channels only"
            )
        return entity

    def _change_actor(self, header: Any) -> Actor:
        user = header.commit_user or None
        ours = self._our_client in header.change_origin.split(";")
        if ours:
            return Actor(kind=ActorKind.INTEGRATION, id=user)
        return self._vocabulary.actor(user, default=ActorKind.AGENT)

    def _link(self, connector: str, entity: EntityType, record_id: str, record: Any) -> str:
        linked = record.get(self._vocabulary.settings.link_field)
        if isinstance(linked, str) and is_link_id(linked):
            return linked
        if entity is EntityType.CASE:
            return case_link_id("salesforce", connector, record_id)
        email = record.get("Email")
        return contact_link_id(
            email if isinstance(email, str) and email else None,
            platform="salesforce",
            connector_id=connector,
            entity_id=record_id,
        )

    def _data(self, entity: EntityType, record: Mapping[str, Any], record_id: str) -> EntityData:
        if entity is EntityType.CASE:
            return self._vocabulary.case(record, record_id)
        if entity is EntityType.CONTACT:
            return self._vocabulary.contact(record)
        return self._vocabulary.message(record, record_id)

    # -- change events ---------------------------------------------------------------------

    def _change(self, connector: str, body: ChangeBody) -> _Change | None:
        header = body.header
        sobject = header.entity_name
        entity = self._entity(sobject)
        if entity is EntityType.MESSAGE:
            raise SkippableRecordError(
                "a CaseComment change event: Salesforce publishes none (CaseComment is not on "
                "'Change Event Object Support'), so this delivery was made up; check its source"
            )
        op = _OPS.get(header.change_type)
        if op is None:
            raise SkippableRecordError(
                f"change type {header.change_type[:40]!r} is not CREATE, UPDATE, DELETE or "
                "UNDELETE (GAP_* events are re-reads, handled by the subscriber); check the source"
            )
        record_id = body.record_id
        record: dict[str, Any] = {**(body.current or {}), **body.fields}
        change = _Change(
            entity,
            record_id,
            self._change_actor(header),
            op,
            header.committed_at,
            version=str(header.commit_number) if header.commit_number is not None else None,
        )
        change.link_id = self._link(connector, entity, record_id, record)
        if op is Op.DELETE:
            return change
        named = _populated(body.fields) if header.change_type != "UPDATE" else header.changed_fields
        change.changed = self._vocabulary.canonical_fields(sobject, named)
        if header.change_type == "UPDATE":
            if not change.changed:
                return None  # nothing Deskstream syncs changed (LastModifiedDate, Description)
            missing = [n for n in (*body.unknown, *body.diffs) if n not in (body.current or {})]
            if body.current is None or self._vocabulary.canonical_fields(sobject, missing):
                raise SkippableRecordError(
                    f"{sobject} {record_id} UPDATE without the record's current values "
                    f"({'no current' if body.current is None else ', '.join(missing)}): the "
                    "source must attach the record read after the event "
                    "(connectors.salesforce.raw.current_query); replay after fixing it"
                )
            for name in (*body.unknown, *body.diffs):  # the read value, not the diff text
                record[name] = body.current[name]
        change.data = self._data(entity, record, record_id)
        return change

    # -- read records ----------------------------------------------------------------------

    def _read(self, connector: str, body: RecordBody) -> _Change:
        record, sobject, record_id = body.record, body.sobject, body.record_id
        entity = self._entity(sobject)
        if not record_id:
            raise SkippableRecordError(f"a read {sobject} record without Id; nothing to link")
        created = parse_time(record.get("CreatedDate"), "CreatedDate")
        modified = parse_time(record.get("LastModifiedDate"), "LastModifiedDate")
        stamp = parse_time(record.get("SystemModstamp"), "SystemModstamp")
        occurred = modified or stamp or created
        if occurred is None:
            raise SkippableRecordError(
                f"a read {sobject} {record_id} without LastModifiedDate or SystemModstamp; the "
                "query must select them"
            )
        if record.get("IsDeleted") is True:  # QueryAll shows deleted records
            change = _Change(entity, record_id, Actor(kind=ActorKind.SYSTEM), Op.DELETE, occurred)
        elif entity is EntityType.MESSAGE:
            message = self._vocabulary.message(record, record_id)
            edited = modified is not None and created is not None and modified > created
            op, changed = (Op.UPDATE, ["body", "public"]) if edited else (Op.CREATE, [])
            change = _Change(entity, record_id, message.author, op, occurred, changed, message)
        else:
            by = str(record.get("LastModifiedById") or "") or None
            actor = self._vocabulary.actor(by, default=ActorKind.AGENT)
            changed = self._vocabulary.canonical_fields(sobject, body.changed)
            change = _Change(entity, record_id, actor, Op.UPDATE, occurred, changed)
            change.data = self._data(entity, record, record_id)
        change.version = stamp.isoformat() if stamp else None
        if entity is EntityType.MESSAGE:
            parent = record.get("Parent")
            parent_record = parent if isinstance(parent, dict) else {}
            case_id = str(record.get("ParentId") or "")
            change.link_id = self._link(connector, EntityType.CASE, case_id, parent_record)
        else:
            change.link_id = self._link(connector, entity, record_id, record)
        return change
