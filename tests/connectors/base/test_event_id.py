"""Canonical event ids are uuid5 over (connector, source event id, index) forever: the direct
computation in ``connectors.base.normalize.event_id`` gives exactly what ``uuid.uuid5`` gives,
so ids written before it and after it meet in every dedupe."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from connectors.base.normalize import EVENT_ID_NAMESPACE, event_id


@given(st.text(max_size=40), st.text(max_size=80), st.integers(0, 10**9))
def test_event_ids_are_the_uuid5_of_connector_source_event_and_index(
    connector: str, source_event: str, index: int
) -> None:
    name = f"{connector}\x1f{source_event}\x1f{index}"
    assert event_id(connector, source_event, index) == str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def test_a_known_id_never_changes() -> None:
    # The namespace and the name's shape are fixed forever: changing either re-ids every event.
    assert event_id("zendesk", "01HQ7Z", 2) == "653e57ae-e629-536a-bb04-033c7747be27"
