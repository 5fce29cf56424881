"""The schema of the topics the agents read: an event made straight from its Kafka message.

The agents read keys and values as the bytes Kafka holds and decode the values themselves
(``app.channels.inbound``). Faust's ``Schema`` still sends every record through its
serializer registry to find that out: ``loads_key`` and ``loads_value`` look the "raw" codec
up by name, ask the app's settings for the default serializers, "reconstruct" a model from
the bytes (there is none), and ``App.create_event`` reads the Event class from the settings
again. For each record read, about 14 % of Faust's reading path (``bench.faust_floor``'s
profile, ``docs/performance.md``), to hand over the message's own key and value.

``RawSchema`` gives the same event, made from the message at once. It keeps Faust's
semantics for these topics: the "raw" codec returns the bytes unchanged, a missing key or
value stays None (no model type is declared to refuse it), and the headers are the
message's. Nothing can fail to decode, so there is no decode error to report or propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import faust
from faust.types import AppT, EventT, Message

__all__ = ["RawSchema", "raw_schema"]


class RawSchema(faust.Schema[bytes | None, bytes | None]):
    def compile(
        self,
        app: AppT,
        *,
        on_key_decode_error: Any = None,
        on_value_decode_error: Any = None,
        default_propagate: bool = False,
    ) -> Any:
        make = self.event_maker(app)

        async def decode(message: Message, *, propagate: bool = default_propagate) -> EventT[Any]:
            return make(message)

        return decode

    def event_maker(self, app: AppT) -> Callable[[Message], EventT[Any]]:
        """The event of a message, made at once (``app.conductor`` calls it without the
        coroutine ``decode`` is)."""
        # Read once: a settings lookup on every record otherwise.
        event_class = cast(Callable[..., EventT[Any]], app.conf.Event)

        def make(message: Message) -> EventT[Any]:
            return event_class(app, message.key, message.value, message.headers, message)

        return make


def raw_schema() -> RawSchema:
    """A schema for one topic: Faust may set a topic's serializers on its schema object."""
    return RawSchema(key_serializer="raw", value_serializer="raw")
