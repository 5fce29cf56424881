"""``streams.converge.Register`` on its own: the orderings the planner tests reach only by
chance (the randomized models, the cluster suite)."""

from __future__ import annotations

from typing import Any

from streams.converge import Policy, Register

POLICY = Policy(resolution=1.0, precedence=("zendesk", "salesforce"))
SIDES = ("zendesk", "salesforce")


def _same(value: Any, source: str, target: str) -> Any:
    return value  # one vocabulary on both sides


def _observe(
    register: Register,
    side: str,
    value: str,
    at: float,
    *,
    noted: int,
    explicit: bool,
    ours: bool = False,
    person: bool = False,
) -> str:
    return register.observe(
        side,
        value,
        at,
        noted=noted,
        explicit=explicit,
        ours=ours,
        person=person,
        views_are_changes=False,  # both report every status change with its own event
        policy=POLICY,
        agrees=register.agreement(_same),
    ).outcome


def test_an_answer_older_than_the_echo_already_seen_does_not_move_the_record_back() -> None:
    """The echo of our write (a newer report of the record) arrives before the write's
    answer, whose time is older. Settling the answer must not record that older time over
    the echo's: a copy of the record from between the two times, showing the value before
    our write, is stale, and the planner must not write the winner there once more."""
    register = Register({})
    _observe(register, "zendesk", "open", 100.0, noted=1, explicit=False)  # the baseline
    won = _observe(register, "salesforce", "on_hold", 105.0, noted=2, explicit=True, person=True)
    assert won == "won"
    wants = register.wants(SIDES, _same, register.agreement(_same))
    assert [(w.side, w.value) for w in wants] == [("zendesk", "on_hold")]
    register.track("zendesk", "on_hold", "c1", step=2)

    # Our write's echo, stamped 107, is read before the write's answer, stamped 106.
    echo = _observe(register, "zendesk", "on_hold", 107.0, noted=3, explicit=True, ours=True)
    assert echo == "echo"
    assert register.settle("zendesk", "c1", applied=True, at=106.0, noted=4)
    # A copy of the ticket made at 106.5 (a customer's comment notification, say) that
    # still shows the status before our write: older than the echo, so stale.
    stale = _observe(register, "zendesk", "open", 106.5, noted=5, explicit=False)

    assert stale == "stale"
    seen = register.seen("zendesk")
    assert seen is not None
    assert seen[:2] == (107.0, "on_hold")
    assert register.wants(SIDES, _same, register.agreement(_same)) == []


def test_the_echo_of_an_earlier_write_does_not_undo_a_later_answer_of_the_same_second() -> None:
    """Two of our writes to one record, both answered, then the echo of the first arrives,
    stamped in the same second as the second write's answer (the cluster suite: a CDC
    backlog read after a takeover). Writes to one record land in the order issued, so our
    echo says nothing newer than our later answer: the record holds the second value, and
    nothing is written again."""
    register = Register({})
    _observe(register, "zendesk", "on_hold", 10.0, noted=1, explicit=False)  # the baseline
    first = _observe(register, "salesforce", "open", 20.0, noted=2, explicit=True, person=True)
    assert first == "won"
    register.track("zendesk", "open", "c1", step=2)
    second = _observe(register, "salesforce", "on_hold", 21.0, noted=3, explicit=True, person=True)
    assert second == "won"
    register.track("zendesk", "on_hold", "c2", step=3)
    assert register.settle("zendesk", "c1", applied=True, at=30.06, noted=4)
    assert register.settle("zendesk", "c2", applied=True, at=30.09, noted=5)

    echo = _observe(register, "zendesk", "open", 30.05, noted=6, explicit=True, ours=True)

    assert echo == "echo"
    seen = register.seen("zendesk")
    assert seen is not None
    assert seen[1] == "on_hold"
    assert register.wants(SIDES, _same, register.agreement(_same)) == []
