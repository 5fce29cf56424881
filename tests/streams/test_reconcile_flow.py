"""A reconciliation's re-read of a linked record, through the planner: a field that differs
from what the link last heard is a change nobody reported, repaired through the normal path and
audited as ``reconciled`` with why; a re-read that agrees changes nothing; an older re-read
than the last report is no drift."""

from __future__ import annotations

from datetime import timedelta

from connectors.base.source import RECONCILE_EVENT_TYPE
from schemas.models import Actor, ActorKind, Case, CaseStatus, Envelope, Platform
from tests.streams.builders import World
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
