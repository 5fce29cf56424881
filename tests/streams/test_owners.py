"""Case owner ⇄ assignee across three members (the shipped Intercom → Zendesk ⇄ Salesforce
rules): the planner alone, with owners named as the sync agent hands them over (an agent's
id on its platform and, once resolved, its email).

The owner is one person under three ids; the planner compares emails and writes the email,
each sink finding its own agent for it. Nobody owning a record syncs as nobody; an AI agent or
the integration never becomes an owner; an owner whose email is unknown says nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from connectors.base.commands import CREATED_OWNER
from schemas.models import Actor, ActorKind, Case, CaseStatus, Envelope, Op, SyncCommand
from streams.config import SyncConfig
from streams.owners import owner_to_resolve, with_owner_email
from streams.state import MAX_AGENTS, LinkState
from tests.streams.builders import BOT, IC, SF, SF_AGENT, ZD, World
from tests.streams.three_way import EXAMPLE, Link, linked, three_way_config, to

ADA, BEN = "ada@example.com", "ben@example.com"


def agent(agent_id: str, email: str | None = None) -> Actor:
    return Actor(kind=ActorKind.AGENT, id=agent_id, email=email)


ADA_ZD, ADA_SF, ADA_IC = agent("zd-ada", ADA), agent("005-ada", ADA), agent("ic-ada", ADA)
BEN_ZD, BEN_SF, BEN_IC = agent("zd-ben", BEN), agent("005-ben", BEN), agent("ic-ben", BEN)
PERSON_ZD = Actor(kind=ActorKind.AGENT, id="u-9", name="Sam")


@pytest.fixture
def world() -> World:
    return World()


def _owner(command: SyncCommand) -> Actor | None:
    assert isinstance(command.data, Case)
    assert "assignee" in command.changed_fields
    return command.data.assignee


def _assignments(commands: list[SyncCommand]) -> list[SyncCommand]:
    """The commands that write an owner (the linked Case's priority, which the harness's
    create answer did not confirm, is written on the ticket's first report: not ours here)."""
    return [c for c in commands if "assignee" in c.changed_fields]


def _owners(commands: list[SyncCommand]) -> dict[str, Actor | None]:
    """Target platform → the owner its one command writes."""
    found: dict[str, Actor | None] = {}
    for command in _assignments(commands):
        assert command.target.platform.value not in found, "one write per record"
        found[command.target.platform.value] = _owner(command)
    return found


def _by_email(email: str | None) -> Actor | None:
    return Actor(kind=ActorKind.AGENT, email=email) if email else None


def _answer(link: Link, commands: list[SyncCommand], ids: dict[str, str]) -> list[SyncCommand]:
    """Each sink wrote its owner (the fingerprint names the field) and answered its agent's
    id; returns what the answers caused."""
    caused: list[SyncCommand] = []
    for command in _assignments(commands):
        owner = _owner(command)
        platform = command.target.platform.value
        created = {CREATED_OWNER: ids[platform]} if owner is not None else {}
        email = owner.email if owner is not None else ""
        caused += link.written(
            command, None, fields={"assignee": email or ""}, created=created
        ).commands
    return _assignments(caused)


def _agents(link: Link) -> dict[str, str]:
    """The link's memory of its owners, as the sync agent hands it over."""
    state = link.table.read()
    return state.agents if state is not None else {}


def _resolved(link: Link, event: Envelope) -> Envelope:
    """What the sync agent hands the planner: the owner's email from the link's memory; a
    report it would have to ask the platform about fails the test (these must cost no call)."""
    filled, lookup = owner_to_resolve(link.planner.config, _agents(link), event)
    assert lookup is None, f"an API lookup of {lookup} was needed"
    return filled


def _assigned_everywhere(world: World) -> Link:
    """Ada is assigned the ticket; the Case and the conversation follow, and the echoes
    (named by id only, as the platforms report them) are known from the link's memory."""
    link = linked(world)
    plan = link.send(world.ticket(assignee=ADA_ZD, actor=PERSON_ZD, changed=["assignee"]))
    assert _owners(plan.commands) == {"salesforce": _by_email(ADA), "intercom": _by_email(ADA)}
    assert _answer(link, plan.commands, {"salesforce": "005-ada", "intercom": "ic-ada"}) == []
    for echo in (
        world.case(assignee=agent("005-ada"), actor=BOT, changed=["assignee"]),
        world.conversation(assignee=agent("ic-ada"), actor=BOT, changed=["assignee"]),
    ):
        assert _assignments(link.send(_resolved(link, echo)).commands) == []
    return link


def test_assign_in_zendesk_reaches_the_case_and_the_conversation(world: World) -> None:
    link = _assigned_everywhere(world)
    # A later copy of each record, naming the owners by id, writes nothing and asks nothing.
    for copy in (
        world.ticket(assignee=agent("zd-ada"), actor=PERSON_ZD, changed=["status"]),
        world.case(assignee=agent("005-ada"), changed=[]),
    ):
        assert _assignments(link.send(_resolved(link, copy)).commands) == []


def test_reassign_in_salesforce_reaches_zendesk_and_intercom(world: World) -> None:
    link = _assigned_everywhere(world)
    plan = link.send(world.case(assignee=BEN_SF, actor=SF_AGENT, changed=["assignee"]))
    # Intercom hears it through Zendesk, hop by hop (salesforce → zendesk → intercom).
    assert _owners(plan.commands) == {"zendesk": _by_email(BEN), "intercom": _by_email(BEN)}
    assert _answer(link, plan.commands, {"zendesk": "zd-ben", "intercom": "ic-ben"}) == []
    for echo in (
        world.ticket(assignee=agent("zd-ben"), actor=BOT, changed=["assignee"]),
        world.conversation(assignee=agent("ic-ben"), actor=BOT, changed=["assignee"]),
    ):
        assert _assignments(link.send(_resolved(link, echo)).commands) == []


def test_unassign_syncs_as_unassign(world: World) -> None:
    link = _assigned_everywhere(world)
    plan = link.send(world.ticket(assignee=None, actor=PERSON_ZD, changed=["assignee"]))
    assert _owners(plan.commands) == {"salesforce": None, "intercom": None}
    assert _answer(link, plan.commands, {}) == []
    # A Case given to the unassigned queue reports no owner (the normaliser's None).
    for echo in (
        world.case(assignee=None, actor=BOT, changed=["assignee"]),
        world.conversation(assignee=None, actor=BOT, changed=["assignee"]),
    ):
        assert _assignments(link.send(echo).commands) == []


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(BOT, id="the-integration"),
        pytest.param(Actor(kind=ActorKind.AI, id="fin", email="fin@intercom.example"), id="ai"),
    ],
)
def test_ai_and_integration_never_become_owners(world: World, owner: Actor) -> None:
    link = _assigned_everywhere(world)
    plan = link.send(world.conversation(assignee=owner, actor=PERSON_ZD, changed=["assignee"]))
    written = _owners(plan.commands)
    assert written == {"zendesk": None, "salesforce": None}  # nobody, never the bot
    assert all(o is None for o in written.values())


def test_an_owner_known_by_id_only_is_looked_up_and_not_guessed(world: World) -> None:
    link = _assigned_everywhere(world)
    report = world.ticket(assignee=agent("zd-cleo"), actor=PERSON_ZD, changed=["assignee"])
    filled, lookup = owner_to_resolve(link.planner.config, _agents(link), report)
    assert (filled, lookup) == (report, "zd-cleo")  # the sync agent asks Zendesk's directory
    # The directory could not answer: the report says nothing about the owner, and a
    # person's assignment is decided again once the lookup may answer.
    plan = link.send(with_owner_email(report, None))
    assert _assignments(plan.commands) == []
    assert plan.retry_in is not None
    assert [a.decision for a in plan.audits if a.decision == "assignee_unresolved"] == [
        "assignee_unresolved"
    ]
    # Once answered (the same event, sent round again under its retry id), the assignment
    # goes everywhere.
    retried = report.model_copy(update={"event_id": f"{report.event_id}~retry1"})
    again = link.send(with_owner_email(retried, "cleo@example.com"))
    assert _owners(again.commands) == {
        "salesforce": _by_email("cleo@example.com"),
        "intercom": _by_email("cleo@example.com"),
    }


def test_an_owner_with_no_agent_on_the_target_is_not_written_again(world: World) -> None:
    link = linked(world)
    cleo = agent("zd-cleo", "cleo@example.com")
    plan = link.send(world.ticket(assignee=cleo, actor=PERSON_ZD, changed=["assignee"]))
    to_case = _assignments(to(plan, "salesforce"))
    to_conversation = _assignments(to(plan, "intercom"))
    assert [_owner(c) for c in to_case] == [_by_email("cleo@example.com")]
    # Neither Salesforce nor Intercom has an agent with that email: each sink leaves the
    # owner out (no fingerprint for it) and audits why.
    for command in (*to_case, *to_conversation):
        answer = link.written(command, None, fields={}, skipped=["assignee"])
        assert _assignments(answer.commands) == []
    # The records keep reporting their own (unchanged) owners: no write loop.
    for copy in (
        world.case(status=CaseStatus.ON_HOLD, actor=SF_AGENT, changed=["status"]),
        world.conversation(actor=PERSON_ZD, changed=["status"]),
        world.ticket(actor=PERSON_ZD, changed=["status"]),
    ):
        plan = link.send(copy)
        assert all("assignee" not in c.changed_fields for c in plan.commands)


def test_concurrent_reassignments_converge_on_the_precedence(world: World) -> None:
    link = _assigned_everywhere(world)
    cleo = "cleo@example.com"
    at = world.tick()
    by_ticket = link.send(
        world.ticket(assignee=BEN_ZD, actor=PERSON_ZD, changed=["assignee"], at=at)
    )
    assert _owners(by_ticket.commands) == {"salesforce": _by_email(BEN), "intercom": _by_email(BEN)}
    by_case = link.send(
        world.case(assignee=agent("005-cleo", cleo), actor=SF_AGENT, changed=["assignee"], at=at)
    )
    # Same second: Salesforce comes first in the example's precedence, so Cleo wins: the
    # ticket (set to Ben by its person) is set back, the conversation follows, and the Case
    # is written once more, after our write of Ben still on its way there.
    assert _owners(by_case.commands) == {
        "zendesk": _by_email(cleo),
        "intercom": _by_email(cleo),
        "salesforce": _by_email(cleo),
    }
    assert any(a.decision == "conflict_lost" for a in by_case.audits)
    # Every write lands in order; the echoes show Cleo everywhere; nothing more is written.
    ids = {"zendesk": "zd-cleo", "intercom": "ic-cleo", "salesforce": "005-cleo"}
    late = _answer(link, by_ticket.commands, {"salesforce": "005-ben", "intercom": "ic-ben"})
    late += _answer(link, by_case.commands, ids)
    for echo in (
        world.ticket(assignee=agent("zd-cleo"), actor=BOT, changed=["assignee"]),
        world.case(assignee=agent("005-cleo"), actor=BOT, changed=["assignee"]),
        world.conversation(assignee=agent("ic-cleo"), actor=BOT, changed=["assignee"]),
    ):
        late += _assignments(link.send(_resolved(link, echo)).commands)
    assert late == []


def test_a_new_record_is_created_with_the_winning_owner(world: World) -> None:
    link = Link(world)
    link.send(world.conversation(op=Op.CREATE))
    link.send(world.part("p-1", "I was charged twice"))
    link.send(world.conversation(assignee=ADA_IC, actor=PERSON_ZD, changed=["assignee"]))
    [ticket] = link.send(world.conversation(tags=["escalate"], changed=["tags"])).commands
    assert _owner(ticket) == _by_email(ADA)
    [case] = link.written(
        ticket, "t-7", fields={"status": "open", "assignee": ADA}, created={CREATED_OWNER: "zd-ada"}
    ).commands
    assert _owner(case) == _by_email(ADA)
    # The ticket's echo names Ada by her Zendesk id: known from the create's answer.
    echo = world.ticket(assignee=agent("zd-ada"), actor=BOT, op=Op.CREATE, changed=["assignee"])
    assert _assignments(link.send(_resolved(link, echo)).commands) == []


def test_the_route_map_renames_an_email(world: World) -> None:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    document["connectors"] = {"intercom": IC, "zendesk": ZD, "salesforce": SF}
    to_case = next(
        r for r in document["routes"] if (r["from"], r["to"]) == ("zendesk", "salesforce")
    )
    to_case["assignee"] = {"enabled": True, "map": {"Ada@Example.com": "ada.l@corp.example"}}
    link = linked(world, SyncConfig.model_validate(document))
    plan = link.send(world.ticket(assignee=ADA_ZD, actor=PERSON_ZD, changed=["assignee"]))
    assert _owners(plan.commands) == {
        "salesforce": _by_email("ada.l@corp.example"),
        "intercom": _by_email(ADA),
    }
    _answer(link, plan.commands, {"salesforce": "005-adal", "intercom": "ic-ada"})
    echo = world.case(assignee=agent("005-adal"), actor=BOT, changed=["assignee"])
    assert _assignments(link.send(_resolved(link, echo)).commands) == []


def test_owners_are_not_synced_unless_a_route_says_so(world: World) -> None:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    document["connectors"] = {"intercom": IC, "zendesk": ZD, "salesforce": SF}
    for route in document["routes"]:
        route.pop("assignee", None)
    link = linked(world, SyncConfig.model_validate(document))
    plan = link.send(world.ticket(assignee=ADA_ZD, actor=PERSON_ZD, changed=["assignee"]))
    assert _assignments(plan.commands) == []
    report = world.ticket(assignee=agent("zd-ben"), actor=PERSON_ZD, changed=["assignee"])
    assert owner_to_resolve(link.planner.config, _agents(link), report) == (report, None)


def test_the_link_remembers_a_bounded_number_of_agents() -> None:
    state = LinkState.new("l", "case")
    for n in range(MAX_AGENTS + 5):
        state.remember_agent("zendesk", str(n), f"a{n}@example.com")
    assert len(state.agents) == MAX_AGENTS
    assert "zendesk:0" not in state.agents
    assert f"zendesk:{MAX_AGENTS + 4}" in state.agents
    assert three_way_config().route("zendesk", "salesforce") is not None
