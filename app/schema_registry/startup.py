"""At start-up: every subject this worker writes is checked, registered and its ids cached.

For each topic with Avro values, subject ``<topic>-value`` (TopicNameStrategy):

1. its compatibility rule: kept when it is BACKWARD or stricter (BACKWARD[_TRANSITIVE],
   FULL[_TRANSITIVE]), else set to ``DESKSTREAM_SCHEMA_REGISTRY_COMPATIBILITY``
   (FULL_TRANSITIVE by default, the rule ``tests/schemas/test_compat.py`` keeps against every
   release);
2. our schema against it (the compatibility endpoint, verbose): incompatible → the worker
   refuses to start, naming the subject and the registry's reasons;
3. registered (the same schema again is a no-op that returns its id); a registry that refuses
   writes (401/403: schemas registered by a pipeline) is asked for the id instead;
4. every other version of the subject is read, so records written by other releases decode
   without a registry call.

Steps 1-2 run for every subject before any is registered: a refusal registers nothing.

Afterwards the codec writes the Confluent framing and the registry is called again only for
an id never seen (``schemas.schema_ids``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from app.schema_registry.client import RegistryClient
from app.topics import TopicSpec
from schemas.compat import pair_problems
from schemas.errors import IncompatibleSchemaError, SchemaError, SchemaRegistryError
from schemas.registry import SchemaRegistry
from schemas.schema_ids import SchemaIds, registry_schema_text

__all__ = ["STRICT_ENOUGH", "prepare_subjects"]

log = logging.getLogger(__name__)

#: rules that keep old records readable by new readers (BACKWARD or stricter)
STRICT_ENOUGH = frozenset({"BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"})


def prepare_subjects(
    client: RegistryClient,
    specs: Iterable[TopicSpec],
    registry: SchemaRegistry,
    ids: SchemaIds,
    *,
    compatibility: str,
) -> None:
    """Steps 1-4 of the module docstring for every Avro topic of ``specs``, filling ``ids``.

    Every subject is checked before any is registered: a refusal leaves nothing of this
    release in the registry."""
    subjects = [
        (spec.subject, entry, registry_schema_text(entry))
        for spec in specs
        if spec.avro
        for entry in [registry.entry_for(spec.avro)]
    ]
    for subject, entry, schema in subjects:
        _ensure_rule(client, subject, compatibility)
        verdict = client.check(subject, schema)
        if verdict is not None and not verdict.compatible:
            reasons = "; ".join(verdict.messages or _our_reasons(client, subject, schema))
            raise IncompatibleSchemaError(
                f"{entry.name} as this release writes it is incompatible with what subject "
                f"{subject} holds at {client.url} ({reasons}). This worker refuses to start: "
                "its records would break the topic's readers. Deploy a release whose schema is "
                "compatible (new fields need defaults, enums keep their symbols), or, if the "
                "break is intended, move to a new topic"
            )
    for subject, entry, schema in subjects:
        schema_id = _register(client, subject, schema)
        if schema_id is None:
            schema_id = client.lookup(subject, schema)
        if schema_id is None:
            raise SchemaRegistryError(
                f"{entry.name} is not registered under subject {subject} at {client.url}, and "
                "the registry refused to let this worker register it; register it there (the "
                "schema is schemas/<name>.avsc with its named types inlined), or give the "
                "worker's credentials write access"
            )
        ids.set_writer(entry.name, schema_id)
        _learn_versions(client, subject, ids)
        log.info("schema registered subject=%s schema=%s id=%d", subject, entry.name, schema_id)


def _our_reasons(client: RegistryClient, subject: str, schema: str) -> list[str]:
    """Why, by our own checker (``schemas.compat``), when the registry gives no messages
    (Apicurio does not)."""
    try:
        _, registered = client.version(subject, "latest")
        problems = pair_problems(json.loads(schema), json.loads(registered))
    except (SchemaError, ValueError) as exc:
        return [f"the registry gave no reason and its latest version could not be compared: {exc}"]
    return problems[:10] or ["the registry gave no reason"]


def _ensure_rule(client: RegistryClient, subject: str, wanted: str) -> None:
    level = client.subject_level(subject)
    if level in STRICT_ENOUGH:
        return
    try:
        client.set_level(subject, wanted)
    except SchemaRegistryError as exc:
        raise SchemaRegistryError(
            f"subject {subject} has compatibility {level or 'unset (the global rule)'}, which "
            f"lets a producer break its readers, and setting it to {wanted} failed ({exc}); "
            f"set it in the registry (PUT /config/{subject}) to BACKWARD or stricter"
        ) from None
    log.info("schema subject rule set subject=%s from=%s to=%s", subject, level, wanted)


def _register(client: RegistryClient, subject: str, schema: str) -> int | None:
    try:
        return client.register(subject, schema)
    except SchemaRegistryError as exc:
        if exc.status == 409:
            # The compatibility endpoint said yes and registration says no: a transitive
            # rule the endpoint checked against the latest version only.
            raise IncompatibleSchemaError(
                f"subject {subject} refused this release's schema as incompatible ({exc}). "
                "This worker refuses to start: deploy a release whose schema is compatible"
            ) from None
        if exc.status in (401, 403):
            log.warning("schema registration refused subject=%s; looking the id up", subject)
            return None
        raise


def _learn_versions(client: RegistryClient, subject: str, ids: SchemaIds) -> None:
    known = ids.known_ids()
    for version in client.versions(subject):
        schema_id, text = client.version(subject, version)
        if schema_id not in known:
            ids.learn(schema_id, text)
            known[schema_id] = ""
