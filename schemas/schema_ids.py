"""Schema ids from a registry that speaks the Confluent API, cached for the codec.

The Confluent framing (``00``, a 4-byte big-endian schema id, the Avro body) names a writer
schema by the id a registry gave it. ``SchemaIds`` holds what the codec needs on its hot
path, filled once at start-up (``app.schema_registry``):

- the id each top-level message is *written* with (``writer_id``): its current schema's id;
- the writer schema each *read* id names (``entry``): a shipped schema when its
  fingerprint matches one (current or released: read without a registry call), else a schema
  another producer registered, resolved into the current one by Avro's rules.

An id never seen before (a newer producer's schema, registered after this process started)
is fetched once through ``fetch`` and cached: the only registry call after warm-up. A fetch
that fails is remembered for ``retry_after`` seconds, so a registry outage costs one call per
id and interval, not one per record; the record itself fails with a ``SchemaError`` (the
agents quarantine or dead-letter it, as for any record they cannot read).

Registries give one id per schema *content*, whatever the subject (Confluent documents it;
Apicurio's ccompat API does the same with its content ids), so one id per message type
serves every topic the type is written to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastavro.schema import parse_schema, to_parsing_canonical_form

from schemas.errors import SchemaError
from schemas.registry import SchemaEntry, SchemaRegistry, schema_fingerprint

__all__ = ["SchemaIds", "registry_schema_text"]

#: fetch(schema_id) -> the schema's JSON text, as ``GET /schemas/ids/{id}`` answers it
Fetch = Callable[[int], str]


def _strip_fastavro_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_fastavro_keys(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_strip_fastavro_keys(v) for v in value]
    return value


def registry_schema_text(entry: SchemaEntry) -> str:
    """The schema a registry holds for ``entry``: self-contained (every named type defined at
    its first use), with docs and defaults (a compatibility check needs the defaults), in one
    fixed spelling so that registering it again finds the same content."""
    return json.dumps(_strip_fastavro_keys(entry.parsed), separators=(",", ":"))


class SchemaIds:
    """Writer ids by message name, writer schemas by id; see the module docstring."""

    def __init__(
        self, registry: SchemaRegistry, fetch: Fetch | None = None, *, retry_after: float = 30.0
    ) -> None:
        self.registry = registry
        self._fetch = fetch
        self._retry_after = retry_after
        self._writer: dict[str, int] = {}
        self._headers: dict[str, bytes] = {}
        self._by_id: dict[int, SchemaEntry] = {}
        self._failed: dict[int, tuple[float, str]] = {}

    def set_writer(self, name: str, schema_id: int) -> None:
        """``name``'s current schema is registered as ``schema_id``: write it with that id."""
        entry = self.registry.entry_for(name)
        known = self._writer.get(name)
        if known is not None and known != schema_id:
            raise SchemaError(
                f"the registry gave {name} two ids, {known} and {schema_id}, for the same "
                "schema under different subjects; it does not give one id per schema content "
                "as the Confluent API does. Use a registry that does (Confluent, Apicurio with "
                "apicurio.ccompat.legacy-id-mode.enabled=false)"
            )
        self._writer[name] = schema_id
        self._headers[name] = b"\x00" + schema_id.to_bytes(4, "big")
        self._by_id[schema_id] = entry

    def learn(self, schema_id: int, schema_text: str) -> SchemaEntry:
        """Remember which writer schema ``schema_id`` names (its JSON text from the registry)."""
        entry = self._entry_from_text(schema_id, schema_text)
        self._by_id[schema_id] = entry
        self._failed.pop(schema_id, None)
        return entry

    def writer_id(self, name: str) -> int:
        return int.from_bytes(self.header(name)[1:], "big")

    def header(self, name: str) -> bytes:
        """The 5 bytes that frame a ``name`` message: ``00`` and its big-endian schema id."""
        try:
            return self._headers[name]
        except KeyError:
            raise SchemaError(
                f"no schema id for {name}: it was not registered when this process started "
                "(only the message types of the topics it writes are); register it, or write "
                "it through a worker"
            ) from None

    def entry(self, schema_id: int) -> SchemaEntry:
        """The writer schema of ``schema_id``: cached, or fetched once from the registry."""
        entry = self._by_id.get(schema_id)
        if entry is not None:
            return entry
        failed = self._failed.get(schema_id)
        if failed is not None and time.monotonic() < failed[0]:
            raise SchemaError(failed[1])
        if self._fetch is None:
            raise SchemaError(
                f"unknown schema id {schema_id}: this reader has no schema registry to ask "
                "(set DESKSTREAM_SCHEMA_REGISTRY_URL to the registry the producer used)"
            )
        try:
            text = self._fetch(schema_id)
            return self.learn(schema_id, text)
        except SchemaError as exc:
            message = f"schema id {schema_id}: {exc}"
        self._failed[schema_id] = (time.monotonic() + self._retry_after, message)
        raise SchemaError(message)

    def known_ids(self) -> dict[int, str]:
        """Every id cached so far and the message it names (for logs and tests)."""
        return {schema_id: entry.name for schema_id, entry in self._by_id.items()}

    def _entry_from_text(self, schema_id: int, text: str) -> SchemaEntry:
        try:
            parsed = parse_schema(json.loads(text))
            canonical = to_parsing_canonical_form(parsed)
        except Exception as exc:  # fastavro and json raise a zoo; the id is what matters
            raise SchemaError(
                f"the registry's schema {schema_id} is not a valid Avro schema "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        fingerprint = schema_fingerprint(parsed)
        shipped = self.registry.by_fingerprint.get(fingerprint)
        if shipped is not None:
            return shipped  # a schema this release ships: read without resolution
        name = parsed.get("name") if isinstance(parsed, dict) else None
        current = self.registry.current.get(str(name))
        if current is None:
            known = ", ".join(sorted(self.registry.current))
            raise SchemaError(
                f"the registry's schema {schema_id} is {name or 'not a record'}, not one of "
                f"the messages this reader knows ({known}); was it written to this topic by "
                "another application?"
            )
        # Another version of a message we know (a newer producer's): resolve into ours.
        return SchemaEntry(
            current.name,
            f"registry id {schema_id}",
            parsed,
            canonical,
            fingerprint,
            current.model,
            reader=current.parsed,
        )
