from __future__ import annotations

from app.profiles import ProfileCache, profile_key
from connectors.base.links import contact_link_id
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
