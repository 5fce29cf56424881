"""The sync agent's own logic (the planner is tested in tests/streams)."""

from __future__ import annotations

import logging

import pytest

from app.agents.sync import MAX_RETRIES, _retries_spent, _retry_of, changelog_state
from tests.streams.builders import World


def test_a_retried_event_gets_deterministic_ids_and_backs_off_until_spent() -> None:
    event = World().ticket()
    delays = []
    current = event
    while (retry := _retry_of(current)) is not None:
        current, delay = retry
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(delays) == MAX_RETRIES
    assert current.event_id == f"{event.event_id}~retry{MAX_RETRIES}"
    assert current.model_copy(update={"event_id": event.event_id}) == event  # same content
    first = _retry_of(event)
    assert first is not None
    assert first == _retry_of(event)  # a redelivered event retries under the same id


def test_an_input_read_again_that_changed_nothing_writes_the_stored_state_again() -> None:
    # A RocksDB store outlives a stop between its write and the changelog's acknowledgement:
    # read again after a restart, the input finds its effects stored and changes nothing, and
    # the changelog must catch up before the input is acked.
    assert changelog_state(None, b"stored", read_again=True) == b"stored"
    assert changelog_state(b"new", b"stored", read_again=True) == b"new"
    assert changelog_state(b"new", b"stored", read_again=False) == b"new"
    assert changelog_state(None, b"stored", read_again=False) is None  # nothing to catch up
    assert changelog_state(None, None, read_again=True) is None  # a link never stored


def test_spent_retries_warn_for_an_owner_and_inform_for_other_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = World().ticket()
    with caplog.at_level(logging.INFO, logger="app.agents.sync"):
        _retries_spent("lnk_1", event, ["assignee_unresolved", "status_synced"])
        _retries_spent("lnk_2", event, ["escalation_waiting"])
    owner, other = caplog.records
    assert owner.levelno == logging.WARNING
    assert "waiting_for=assignee_unresolved:" in owner.getMessage()  # not the other decisions
    assert "`deskstream audit trace lnk_1`" in owner.getMessage()
    assert "owner is not synced until the record changes again" in owner.getMessage()
    assert other.levelno == logging.INFO
    assert "waiting_for=escalation_waiting" in other.getMessage()
