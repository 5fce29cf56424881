"""Salesforce changes on the raw topic: the body of a ``RawDelivery``, one per record change.

Salesforce pushes no webhooks: a worker pulls changes (Change Data Capture, a SOQL poll, a
reconciliation or a re-read after a gap event) and puts each on the raw topic like a webhook
delivery, so every source goes through the one normalise path. Two bodies, JSON:

``{"kind": "change", ...}``: one record's share of a change event
(:class:`~connectors.salesforce.cdc_items.DecodedChange`): ``header`` (``entityName``,
``changeType``, ``changedFields``, ``nulledFields``, ``diffFields``, ``recordIds`` holding
this record only, ``commitTimestamp`` in epoch milliseconds, ``commitNumber``,
``commitUser``, ``changeOrigin``, ``transactionKey``, ``sequenceNumber``), ``fields`` (the
values the event carries), ``diffs`` and ``unknown`` (changed fields whose value the event
does not carry: a long text diff, a field hidden from the subscriber), and ``current``: the
record as the source read it over REST after the event, or null. An UPDATE event carries only
its changed fields, while a canonical Case or Contact is a whole record, so a source attaches
``current`` to every UPDATE (one SOQL query per batch, :func:`current_query`); the event's own
values win over it for the fields the event changed.

``{"kind": "record", "sobject": ..., "read": "poll" | "reconcile" | "reread", "record": ...}``:
a record a query read (``CaseComment`` publishes no change events and is polled; Case and
Contact come this way from reconciliation and after gap events). A reconciliation adds
``changed``: the fields whose values differ from its previous read of the record, which the
normaliser reports as changed (a copy naming no field is only news of where the record is).

Delivery ids are deterministic, so a re-read of the same thing dedupes downstream: a change
is ``cdc:<transactionKey>:<sequenceNumber>:<recordId>`` (one transaction's events are told
apart by their sequence number, a merged event's records by their id); a read record is
``soql:<Id>:<SystemModstamp>`` (every save moves the stamp: the same version read by a poll
and by a reconciliation is one delivery); one that names changed fields adds them
(``soql:<Id>:<SystemModstamp>:<Field>+<Field>``), so it is not taken for a plain copy of the
same version read before.

Every delivery a source makes carries the ``deskstream-source`` header naming the source kind
(``connectors.base.source.SOURCE_HEADER``).

Sources: "ChangeEventHeader Fields",
https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm
(``transactionKey`` and ``sequenceNumber`` identify an event within its transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base.normalize import parse_json, validation_problems
from connectors.base.source import SOURCE_HEADER
from connectors.salesforce.cdc_items import DecodedChange
from connectors.salesforce.soql_text import api_name, field_path, id_literal
from schemas.errors import SkippableRecordError
from schemas.models import Platform, RawDelivery

__all__ = [
    "CONTENT_TYPE",
    "ChangeBody",
    "ChangeHeaderBody",
    "ReadBy",
    "RecordBody",
    "SalesforceBody",
    "change_delivery",
    "current_query",
    "decode_body",
    "partition_key",
    "record_delivery",
]

CONTENT_TYPE = "application/json"
ReadBy = Literal["poll", "reconcile", "reread"]
#: a body's largest id or name: ids are 18 characters, API names at most 80
_MAX_NAME = 255


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ChangeHeaderBody(_Strict):
    entity_name: str = Field(alias="entityName", min_length=1, max_length=_MAX_NAME)
    change_type: str = Field(alias="changeType", min_length=1, max_length=40)
    changed_fields: list[str] = Field(default_factory=list, alias="changedFields")
    nulled_fields: list[str] = Field(default_factory=list, alias="nulledFields")
    diff_fields: list[str] = Field(default_factory=list, alias="diffFields")
    record_ids: list[str] = Field(alias="recordIds", min_length=1, max_length=1)
    commit_timestamp: int = Field(alias="commitTimestamp", ge=0)
    commit_number: int | None = Field(default=None, alias="commitNumber")
    commit_user: str = Field(default="", alias="commitUser", max_length=_MAX_NAME)
    change_origin: str = Field(default="", alias="changeOrigin", max_length=1000)
    transaction_key: str = Field(alias="transactionKey", min_length=1, max_length=_MAX_NAME)
    sequence_number: int = Field(alias="sequenceNumber", ge=0)

    @property
    def committed_at(self) -> datetime:
        return datetime.fromtimestamp(self.commit_timestamp / 1000, UTC)


class ChangeBody(_Strict):
    kind: Literal["change"]
    header: ChangeHeaderBody
    fields: dict[str, Any] = Field(default_factory=dict)
    diffs: dict[str, str] = Field(default_factory=dict)
    unknown: list[str] = Field(default_factory=list)
    current: dict[str, Any] | None = None

    @property
    def record_id(self) -> str:
        return self.header.record_ids[0]


class RecordBody(_Strict):
    kind: Literal["record"]
    sobject: str = Field(min_length=1, max_length=_MAX_NAME)
    read: ReadBy
    record: dict[str, Any]
    #: fields whose values differ from the source's previous read (reconciliation)
    changed: list[str] = Field(default_factory=list)

    @property
    def record_id(self) -> str:
        return str(self.record.get("Id") or "")


SalesforceBody = ChangeBody | RecordBody


def _time_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _delivery(
    connector_id: str, delivery_id: str, body: dict[str, Any], source: str
) -> RawDelivery:
    return RawDelivery(
        delivery_id=delivery_id,
        connector_id=connector_id,
        platform=Platform.SALESFORCE,
        received_at=datetime.now(UTC),
        headers={SOURCE_HEADER: source} if source else {},
        body=json.dumps(body, separators=(",", ":"), default=str).encode(),
        content_type=CONTENT_TYPE,
        # Read over an authenticated API session of our own: nothing to verify.
        signature_verified=True,
    )


def change_delivery(
    connector_id: str,
    change: DecodedChange,
    *,
    current: Mapping[str, Any] | None = None,
    source: str = "",
) -> RawDelivery:
    """The raw delivery of one record's share of a change event; ``current`` is the record
    as read after the event (required for a Case or Contact UPDATE to normalise); ``source``
    names the source kind in the ``deskstream-source`` header."""
    header, record = change.header, change.record
    body = {
        "kind": "change",
        "header": {
            "entityName": header.entity,
            "changeType": header.change_type,
            "changedFields": list(header.changed_fields),
            "nulledFields": list(header.nulled_fields),
            "diffFields": list(header.diff_fields),
            "recordIds": [record.record_id],
            "commitTimestamp": _time_ms(header.commit_timestamp),
            "commitNumber": header.commit_number,
            "commitUser": header.commit_user,
            "changeOrigin": header.change_origin,
            "transactionKey": header.transaction_key,
            "sequenceNumber": header.sequence_number,
        },
        "fields": dict(record.fields),
        "diffs": dict(record.diffs),
        "unknown": sorted(record.unknown),
        "current": dict(current) if current is not None else None,
    }
    delivery_id = f"cdc:{header.transaction_key}:{header.sequence_number}:{record.record_id}"
    return _delivery(connector_id, delivery_id, body, source)


def record_delivery(
    connector_id: str,
    sobject: str,
    record: Mapping[str, Any],
    *,
    read: ReadBy,
    changed: Iterable[str] = (),
    source: str = "",
) -> RawDelivery:
    """The raw delivery of a record a query read (it must select ``Id`` and
    ``SystemModstamp``); ``changed``: its fields that differ from the source's previous read."""
    record_id, stamp = record.get("Id"), record.get("SystemModstamp")
    if not isinstance(record_id, str) or not isinstance(stamp, str):
        raise ValueError(
            f"a polled {sobject} record without Id or SystemModstamp; the query must select "
            "both (connectors.salesforce.records.Vocabulary.select lists the rest)"
        )
    body: dict[str, Any] = {"kind": "record", "sobject": sobject, "read": read}
    body["record"] = dict(record)
    delivery_id = f"soql:{record_id}:{stamp}"
    names = sorted(set(changed))
    if names:
        body["changed"] = names
        delivery_id += ":" + "+".join(names)
    return _delivery(connector_id, delivery_id, body, source)


def current_query(sobject: str, fields: Iterable[str], record_ids: Iterable[str]) -> str:
    """The SOQL that reads the current values of a batch's records (at most 200 ids a query,
    to stay well inside the query's length limit)."""
    ids = sorted(set(record_ids))
    if not 1 <= len(ids) <= 200:
        raise ValueError(f"read between 1 and 200 records a query, not {len(ids)}")
    wanted = dict.fromkeys(["Id", "SystemModstamp", *map(field_path, fields)])
    return (
        f"SELECT {', '.join(wanted)} FROM {api_name(sobject)} "  # noqa: S608 - checked pieces
        f"WHERE Id IN ({', '.join(id_literal(i) for i in ids)})"
    )


def partition_key(connector_id: str, body: SalesforceBody) -> str:
    """``<connector>:<entity_type>:<id>``: a comment goes with its Case, so everything about
    one Case shares a partition, in order."""
    if isinstance(body, RecordBody) and body.sobject == "CaseComment":
        return f"{connector_id}:case:{body.record.get('ParentId') or body.record_id}"
    entity = body.header.entity_name if isinstance(body, ChangeBody) else body.sobject
    return f"{connector_id}:{entity.lower()}:{body.record_id}"


def decode_body(body: bytes) -> SalesforceBody:
    """The body of a Salesforce raw delivery; ``SkippableRecordError`` saying what is wrong."""
    document = parse_json(body)
    kind = document.get("kind") if isinstance(document, dict) else None
    model: type[ChangeBody] | type[RecordBody]
    if kind == "change":
        model = ChangeBody
    elif kind == "record":
        model = RecordBody
    else:
        raise SkippableRecordError(
            f"not a Salesforce delivery body (kind {str(kind)[:40]!r}, expected 'change' or "
            "'record'); only connectors.salesforce.raw writes Salesforce deliveries: check what "
            "produced this one"
        )
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise SkippableRecordError(
            f"an unreadable Salesforce {kind} body ({validation_problems(exc)}); check the "
            "source that produced it"
        ) from None
