"""Pub/Sub API payloads: Avro binary, decoded with the schema ``GetSchema`` returns, cached
by schema id.

"Event Deserialization Considerations" and "GetSchema RPC Method" (Pub/Sub API Developer
Guide, https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations.html):
a ``ProducerEvent`` carries the ``schema_id`` its ``payload`` was written with; a schema id
names one immutable schema, so it is fetched once and kept (a changed event definition
arrives under a new id).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException

from connectors.salesforce.pubsub import pubsub_api_pb2 as pb
from connectors.salesforce.pubsub import pubsub_api_pb2_grpc as pb_grpc
from schemas.errors import SchemaError

__all__ = ["Metadata", "SchemaCache"]

Metadata = Sequence[tuple[str, str]]


class SchemaCache:
    def __init__(self, stub: pb_grpc.PubSubAsyncStub) -> None:
        self._stub = stub
        self._schemas: dict[str, tuple[dict[str, Any], Any]] = {}
        self.fetches = 0

    async def schema(self, schema_id: str, metadata: Metadata) -> tuple[dict[str, Any], Any]:
        """The schema as JSON and parsed by fastavro (``GetSchema`` on the first use)."""
        cached = self._schemas.get(schema_id)
        if cached is None:
            # Errors of GetSchema are the caller's to translate, with Subscribe's.
            info = await self._stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id), metadata=tuple(metadata)
            )
            self.fetches += 1
            try:
                schema = json.loads(info.schema_json)
                cached = (schema, fastavro.parse_schema(schema))
            except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
                raise SchemaError(
                    f"Salesforce schema {schema_id} is not a readable Avro schema ({exc}); "
                    "report it with the schema id, the subscription cannot go on"
                ) from exc
            self._schemas[schema_id] = cached
        return cached

    async def decode(
        self, event: pb.ProducerEvent, metadata: Metadata
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The event's schema (JSON) and its decoded record."""
        schema, parsed = await self.schema(event.schema_id, metadata)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(event.payload), parsed)
        except (ValueError, EOFError, TypeError, IndexError, KeyError) as exc:
            raise SchemaError(
                f"Salesforce event {event.id} does not decode with its schema "
                f"{event.schema_id} ({type(exc).__name__}); report it with the event id"
            ) from exc
        if not isinstance(record, dict):
            raise SchemaError(
                f"Salesforce event {event.id} is not an Avro record; report it with the event id"
            )
        return schema, record
