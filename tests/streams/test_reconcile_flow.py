"""A reconciliation's re-read of a linked record, through the planner: a field that differs
from what the link last heard is a change nobody reported, repaired through the normal path and
audited as ``reconciled`` with why; a re-read that agrees changes nothing; an older re-read
than the last report is no drift."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectors.base.fingerprints import fingerprint
from connectors.base.source import RECONCILE_EVENT_TYPE
from schemas.models import Actor, ActorKind, Case, CaseStatus, Contact, Envelope, Platform
from tests.streams.builders import IC, ZD, World
from tests.streams.test_sync import Link, decisions, escalated

SYSTEM = Actor(kind=ActorKind.SYSTEM)


def reread(event: Envelope) -> Envelope:
    """The event as a reconciliation sends it: the record as re-read, naming no field."""
    source = event.source.model_copy(update={"event_type": RECONCILE_EVENT_TYPE})
    return event.model_copy(update={"source": source, "changed_fields": []})


def test_a_status_changed_without_an_event_is_repaired_and_audited_why() -> None:
    world = World()
    link = Link(world)
    escalated(world, link)
    # Zendesk reports status changes explicitly, so a plain copy would be an older view; a
    # reconciliation's re-read is a change no webhook reported.
    plan = link.send(reread(world.ticket(status=CaseStatus.SOLVED, actor=SYSTEM)))
    [write] = plan.commands
    assert write.target.platform is Platform.INTERCOM
    assert isinstance(write.data, Case)
    assert write.data.status is CaseStatus.CLOSED
    [reconciled] = [a for a in plan.audits if a.decision == "reconciled"]
    assert reconciled.details["field"] == "status"
    assert reconciled.details["cause"] == "missed_change"
    assert (reconciled.details["believed"], reconciled.details["found"]) == ("open", "solved")
    assert "no event reported this change" in reconciled.reason


def test_a_re_read_that_agrees_with_the_link_changes_nothing() -> None:
    world = World()
    link = Link(world)
    escalated(world, link)
    plan = link.send(reread(world.ticket(status=CaseStatus.OPEN, actor=SYSTEM)))
    assert plan.commands == []
    assert "reconciled" not in decisions(plan)


def test_a_re_read_older_than_the_last_report_is_no_drift() -> None:
    world = World()
    link = Link(world)
    escalated(world, link)
    late = world.tick(60)
    link.send(world.ticket(status=CaseStatus.PENDING, changed=["status"], at=late))
    old = reread(
        world.ticket(status=CaseStatus.OPEN, actor=SYSTEM, at=late - timedelta(seconds=30))
    )
    plan = link.send(old)
    assert "reconciled" not in decisions(plan)
    assert [c.data.status for c in plan.commands if isinstance(c.data, Case)] in (
        [],
        [CaseStatus.PENDING],
    )


def test_a_manual_change_in_an_owned_field_is_set_back_and_says_so() -> None:
    world = World()
    link = Link(world, conflicts={"owners": {"status": "intercom"}})
    escalated(world, link)
    plan = link.send(reread(world.ticket(status=CaseStatus.SOLVED, actor=SYSTEM)))
    [reconciled] = [a for a in plan.audits if a.decision == "reconciled"]
    assert reconciled.details["cause"] == "manual_change_in_owned_field"
    [back] = plan.commands
    assert back.target.platform is Platform.ZENDESK
    assert isinstance(back.data, Case)
    assert back.data.status is CaseStatus.OPEN


def _linked_contact(**config: Any) -> tuple[World, Link]:
    """Maria's Intercom contact, created in Zendesk as u-1 with her name and plan; a minute
    later."""
    world = World()
    link = Link(world, **config)
    first = link.send(
        world.contact(Platform.INTERCOM, IC, "c-1", name="Maria", plan="premium", changed=["name"])
    )
    upsert = link.held_create(first)
    held = [("name", "Maria"), ("plan", "premium")]
    link.written(upsert, "u-1", fingerprints=[fingerprint("zendesk", "u-1", *f) for f in held])
    world.tick(60)
    return world, link


def test_a_contact_field_changed_without_an_event_is_repaired_and_audited_why() -> None:
    world, link = _linked_contact()
    # Zendesk's user events name their field, so a copy naming none was taken as an older
    # view: a rename whose webhook was lost stayed lost. A reconciliation's re-read is the
    # change no webhook reported.
    plan = link.send(reread(world.contact(Platform.ZENDESK, ZD, "u-1", name="María López")))
    [write] = plan.commands
    assert write.target.platform is Platform.INTERCOM
    assert isinstance(write.data, Contact)
    assert (write.changed_fields, write.data.name) == (["name"], "María López")
    [reconciled] = [a for a in plan.audits if a.decision == "reconciled"]
    assert (reconciled.details["field"], reconciled.details["cause"]) == ("name", "missed_change")
    assert (reconciled.details["believed"], reconciled.details["found"]) == ("Maria", "María López")


def test_a_manual_change_to_a_contact_field_another_platform_owns_is_set_back() -> None:
    world, link = _linked_contact()  # plan flows from Intercom only (test_sync's config)
    plan = link.send(reread(world.contact(Platform.ZENDESK, ZD, "u-1", plan="free")))
    [reconciled] = [a for a in plan.audits if a.decision == "reconciled"]
    assert (reconciled.details["field"], reconciled.details["cause"]) == (
        "plan",
        "manual_change_in_owned_field",
    )
    [back] = plan.commands
    assert back.target.platform is Platform.ZENDESK
    assert isinstance(back.data, Contact)
    assert back.data.plan == "premium"


def test_a_contact_re_read_that_agrees_changes_nothing() -> None:
    world, link = _linked_contact()
    plan = link.send(reread(world.contact(Platform.ZENDESK, ZD, "u-1", name="Maria")))
    assert plan.commands == []
    assert "reconciled" not in decisions(plan)
