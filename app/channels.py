"""Faust topics, declared once from ``app.topics`` and imported wherever they are used.

Inputs are read as raw bytes and decoded by the agents themselves (``schemas.codec``): Faust
throws a value that fails to decode into the agent and crashes it, whereas an agent that
decodes can quarantine the poison pill and carry on. Outputs are written through the
registered ``deskstream-avro`` Faust codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import faust

from app.raw_schema import raw_schema
from app.settings import Settings
from app.topics import SINK_PLATFORMS, TopicSpec, by_logical, topic_specs
from schemas.faust_codec import CODEC_NAME

__all__ = ["Channels", "declare_channels", "inbound"]


@dataclass(frozen=True, slots=True)
class Channels:
    raw: faust.TopicT
    quarantine: faust.TopicT
    events: faust.TopicT
    sync: faust.TopicT
    entities: faust.TopicT
    commands: Mapping[str, faust.TopicT]
    writes: faust.TopicT
    timers: faust.TopicT
    dlq: faust.TopicT
    audit: faust.TopicT
    chat: faust.TopicT

    def all(self) -> list[faust.TopicT]:
        fixed = [self.raw, self.quarantine, self.events, self.sync, self.entities]
        rest = [self.writes, self.timers, self.dlq, self.audit, self.chat]
        return [*fixed, *self.commands.values(), *rest]


def _topic(app: faust.App, spec: TopicSpec) -> faust.TopicT:
    return app.topic(
        spec.name,
        partitions=spec.partitions,
        replicas=spec.replication,
        config=dict(spec.configs),
        key_serializer="raw",
        value_serializer=CODEC_NAME,
    )


def declare_channels(app: faust.App, settings: Settings) -> Channels:
    specs = by_logical(topic_specs(settings))
    return Channels(
        raw=_topic(app, specs["raw"]),
        quarantine=_topic(app, specs["quarantine"]),
        events=_topic(app, specs["events"]),
        sync=_topic(app, specs["sync"]),
        entities=_topic(app, specs["entities"]),
        commands={p: _topic(app, specs[f"commands.{p}"]) for p in SINK_PLATFORMS},
        writes=_topic(app, specs["writes"]),
        timers=_topic(app, specs["timers"]),
        dlq=_topic(app, specs["dlq"]),
        audit=_topic(app, specs["audit"]),
        chat=_topic(app, specs["chat"]),
    )


def inbound(app: faust.App, *topics: faust.TopicT) -> faust.TopicT:
    """The same topic(s) for reading: values arrive as bytes for the agent to decode.

    A new Topic rather than ``topic.derive(...)``: in Faust 0.15 a derived topic shares its
    parent's Schema object and overwrites its serializers, which would make the parent (our
    output channel) skip the Avro codec.
    """
    first = topics[0]
    return app.topic(
        *(t.get_topic_name() for t in topics),
        partitions=first.partitions,
        replicas=first.replicas,
        schema=raw_schema(),  # keys and values as Kafka holds them, without Faust's codecs
    )
