from __future__ import annotations

from typing import ClassVar

from connectors.base.normalize import Normaliser
from connectors.base.settings import ConnectorSettings
from connectors.base.source import BACKFILL_HEADER
from connectors.generic.normalize import GenericNormaliser
from schemas.errors import SkippableRecordError
from schemas.models import Envelope, Platform, RawDelivery
from streams.normalize import event_key, normalize_delivery
from tests.factories import NOW, body_of, case_event


def _generic() -> GenericNormaliser:
    return GenericNormaliser(connector_id="crm", settings=ConnectorSettings(platform="generic"))


def _delivery(body: bytes) -> RawDelivery:
    return RawDelivery(
        delivery_id="d-1",
        connector_id="crm",
        platform=Platform.GENERIC,
        received_at=NOW,
        body=body,
        signature_verified=True,
    )


class _Broken(Normaliser):
    platform: ClassVar[str] = "generic"

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        raise KeyError("detail")


def test_good_delivery_yields_events_keyed_by_source_entity() -> None:
    outcome = normalize_delivery(_delivery(body_of(case_event("42"))), _generic(), now=NOW)
    assert outcome.quarantined is None
    assert [event_key(e) for e in outcome.events] == ["generic:crm:case:42"]


def test_a_delivery_a_backfill_wrote_gives_snapshot_events_with_the_same_ids() -> None:
    live = _delivery(body_of(case_event("42")))
    backfilled = live.model_copy(update={"headers": {BACKFILL_HEADER: "1"}})
    [event] = normalize_delivery(live, _generic(), now=NOW).events
    [copy] = normalize_delivery(backfilled, _generic(), now=NOW).events
    assert (event.source.snapshot, copy.source.snapshot) == (False, True)
    assert copy.event_id == event.event_id  # a copy of a change already in is still dropped


def test_skippable_delivery_is_quarantined_with_its_reason_and_bytes() -> None:
    delivery = _delivery(b"{oops")
    outcome = normalize_delivery(delivery, _generic(), now=NOW)
    assert outcome.events == []
    assert outcome.quarantined is not None
    assert outcome.quarantined.delivery == delivery
    assert outcome.quarantined.stage == "normalize"
    assert "not JSON" in outcome.quarantined.reason


def test_a_normaliser_bug_quarantines_instead_of_crashing() -> None:
    outcome = normalize_delivery(
        _delivery(b"{}"),
        _Broken(connector_id="crm", settings=ConnectorSettings(platform="generic")),
        now=NOW,
    )
    assert outcome.quarantined is not None
    assert "KeyError" in outcome.quarantined.reason
    assert "Deskstream bug" in outcome.quarantined.reason


def test_skippable_error_keeps_the_reason_verbatim() -> None:
    class _Refuses(_Broken):
        def normalise(self, delivery: RawDelivery) -> list[Envelope]:
            raise SkippableRecordError("ping events carry no change")

    outcome = normalize_delivery(
        _delivery(b"{}"),
        _Refuses(connector_id="crm", settings=ConnectorSettings(platform="generic")),
        now=NOW,
    )
    assert outcome.quarantined is not None
    assert outcome.quarantined.reason == "ping events carry no change"
