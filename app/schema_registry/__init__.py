"""The schema registry a process writes and reads with: where it is, and start-up.

Which registry (``registry_url``), mirroring how Kafka is found:

- ``DESKSTREAM_SCHEMA_REGISTRY_URL`` (or ``SCHEMA_REGISTRY_URL``): any registry with the
  Confluent API (Confluent, Apicurio's ``/apis/ccompat/v7``, Karapace, Redpanda), with
  ``DESKSTREAM_SCHEMA_REGISTRY_USER`` / ``_PASSWORD[_FILE]`` for basic auth;
- unset, with Kafka the local stack (no ``KAFKA_BOOTSTRAP_SERVERS``): the stack's registry,
  which ``deskstream kafka up`` starts;
- unset with an external Kafka, or ``none``: no registry. Values are then written in the Avro
  single-object encoding, as before the registry existed (tests of a worker that do not need
  one, and a rolling upgrade that runs before the registry does); a warning says so at start.

``install_schema_registry(settings)`` runs before a worker (or a tool that writes) starts:
the subjects are checked and registered (``startup.py``), the ids cached, and the codec set to
write the Confluent framing. A registry that does not answer, or that holds a schema ours is
incompatible with, stops the start with the reason. Tools that only read (``deskstream
audit``, ``dlq list``, the demo) install with ``register=False``: each id is fetched once, the
first time a record names it.
"""

from __future__ import annotations

import logging

from app.kafka_local.registry import registry_layout
from app.schema_registry.client import RegistryClient, safe_url
from app.schema_registry.startup import prepare_subjects
from app.settings import Settings
from app.topics import topic_specs
from schemas.codec import use_schema_ids
from schemas.errors import ConfigurationError, SchemaRegistryError
from schemas.registry import get_registry
from schemas.schema_ids import SchemaIds

__all__ = ["client_for", "install_schema_registry", "registry_password", "registry_url"]

log = logging.getLogger(__name__)

NONE = "none"


def registry_url(settings: Settings) -> str | None:
    """The registry's Confluent-API base URL for these settings; None for no registry."""
    url = (settings.schema_registry_url or "").strip()
    if url.lower() == NONE:
        return None
    if url:
        return url
    if settings.kafka_bootstrap_servers:
        return None
    return registry_layout(settings).url


def registry_password(settings: Settings) -> str | None:
    """The registry's basic-auth password (the setting, or the file it names); None: none."""
    if settings.schema_registry_password is not None:
        return settings.schema_registry_password.get_secret_value()
    path = settings.schema_registry_password_file
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read DESKSTREAM_SCHEMA_REGISTRY_PASSWORD_FILE {path} "
            f"({exc.strerror}); mount the file or fix the path"
        ) from None


def client_for(settings: Settings, url: str) -> RegistryClient:
    return RegistryClient(
        url,
        user=settings.schema_registry_user,
        password=registry_password(settings),
        timeout=settings.schema_registry_timeout_seconds,
    )


def install_schema_registry(settings: Settings, *, register: bool = True) -> SchemaIds | None:
    """Check and register this worker's subjects, then write the Confluent framing with the
    cached ids; None (and the single-object encoding) when no registry is configured. With
    ``register=False`` (readers) nothing is registered: ids are fetched as records name them."""
    url = registry_url(settings)
    if url is None:
        use_schema_ids(None)
        if not register:
            return None
        log.warning(
            "no schema registry: values are written in the Avro single-object encoding, which "
            "Confluent-framing consumers (Kafka Connect, ksqlDB, Flink, confluent-kafka) cannot "
            "read; set DESKSTREAM_SCHEMA_REGISTRY_URL to a Confluent-API registry"
        )
        return None
    client = client_for(settings, url)
    registry = get_registry()

    def fetch(schema_id: int) -> str:
        return client.schema_text(schema_id)

    ids = SchemaIds(registry, fetch)
    if not register:
        use_schema_ids(ids)
        return ids
    try:
        prepare_subjects(
            client,
            topic_specs(settings),
            registry,
            ids,
            compatibility=settings.schema_registry_compatibility,
        )
    except SchemaRegistryError:
        client.close()
        raise
    use_schema_ids(ids)
    log.info(
        "schema registry ready url=%s ids=%s",
        safe_url(url),
        ",".join(f"{name}={schema_id}" for schema_id, name in sorted(ids.known_ids().items())),
    )
    return ids
