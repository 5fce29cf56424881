from __future__ import annotations

import logging

import pytest

from app.profiles import ProfileCache, is_profile_key, profile_key
from connectors.base.links import case_link_id, contact_link_id
from schemas.codec import encode
from schemas.models import Actor, ActorKind, Contact, EntityType, Envelope, Op, Platform, Source
from tests.factories import NOW

LINK = contact_link_id("liam@example.com", platform="", connector_id="", entity_id="")


def _contact(platform: Platform, entity_id: str, **fields: object) -> tuple[bytes, bytes]:
    envelope = Envelope(
        event_id=f"e-{platform.value}",
        source=Source(
            platform=platform,
            connector_id=platform.value,
            entity_type=EntityType.CONTACT,
            entity_id=entity_id,
            event_type="x",
            actor=Actor(kind=ActorKind.CUSTOMER),
            occurred_at=NOW,
        ),
        op=Op.UPDATE,
        data=Contact(emails=["liam@example.com"], **fields),
        link_id=LINK,
        ingested_at=NOW,
    )
    return profile_key(LINK, platform.value).encode(), encode(envelope)


def test_the_intercom_profile_wins_and_each_member_finds_it() -> None:
    cache = ProfileCache("unused:9092", "t", 1)
    cache.apply(*_contact(Platform.ZENDESK, "u-1", name="Liam Z"))
    cache.apply(*_contact(Platform.INTERCOM, "c-1", name="Liam", plan="enterprise"))
    assert cache.get(LINK) is not None
    assert cache.get(LINK).plan == "enterprise"  # type: ignore[union-attr]
    assert cache.by_member("zendesk", "u-1") == cache.get(LINK)
    assert cache.by_member("zendesk", "nobody") is None
    cache.apply(b"junk", b"\x00not avro")  # skipped, not fatal
    assert len(cache) == 1


def test_a_case_snapshot_is_skipped_by_its_key_without_being_decoded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = ProfileCache("unused:9092", "t", 1)
    case_key = case_link_id("intercom", "ic", "conv-1").encode()  # how the sync agent keys it
    assert not is_profile_key(case_key)
    assert is_profile_key(_contact(Platform.INTERCOM, "c-1")[0])
    with caplog.at_level(logging.WARNING, logger="app.profiles"):
        cache.apply(case_key, b"\x00not avro")  # decoded, it would be logged as unreadable
        cache.apply(b"contact:intercom", b"\x00not avro")  # a contact's key is decoded
    # Only this module's records: caplog also catches whatever else logs meanwhile (asyncio
    # reporting an earlier test's task when the collector finds it, for one).
    assert [r.getMessage() for r in caplog.records if r.name == "app.profiles"] == [
        "profile cache skipped an unreadable record key=b'contact:intercom'"
    ]
    assert len(cache) == 0
