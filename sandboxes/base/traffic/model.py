"""The traffic model as plain data: customers, scenarios, the steps of a script, arrivals.

Nothing here does I/O or reads a clock. :class:`Action` ``think_s`` values are *simulated*
human delays; the engine divides them by its ``speed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_WEIGHTS",
    "PLANS",
    "SCENARIO_PLATFORMS",
    "Action",
    "Arrival",
    "Customer",
    "Day",
    "Scenario",
    "Step",
    "make_population",
]

PLANS = ("free", "pro", "premium", "enterprise")
_PLAN_WEIGHTS = (0.5, 0.28, 0.14, 0.08)
_SECONDARY_SHARE = 0.3

_FIRST = (
    "Amelia", "Ben", "Chiara", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Ines", "Jonas",
    "Kwame", "Leila", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomoko",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zara", "Aisha", "Björn", "Camille", "Diego",
    "Emeka", "Freya",
)  # fmt: skip
_LAST = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "García", "Novak", "Haddad", "Schmidt", "Rossi",
    "Kowalski", "Nguyen", "Fischer", "Mensah", "Costa", "Ivanova", "Brennan", "Sato", "Dubois",
    "Kaur", "Jensen", "Silva", "Petrov", "Adeyemi", "Müller", "Larsen", "Romero", "Chen",
    "Walsh", "Bauer", "Ortega",
)  # fmt: skip
_COMPANIES = (
    "Northwind Trading", "Globex Logistics", "Initech Labs", "Umbrella Health", "Stark Retail",
    "Wayne Freight", "Acme Robotics", "Hooli Cloud", "Vandelay Imports", "Soylent Foods",
)  # fmt: skip
_PERSONAL_DOMAINS = ("example.net", "mail.example.org", "inbox.example.com")


def _ascii(text: str) -> str:
    table = str.maketrans("áäçéíñóöøüß", "aaceinooous")
    return text.lower().translate(table)


@dataclass(frozen=True, slots=True)
class Customer:
    """One person in the population; ``key`` is stable across runs of the same seed."""

    key: str
    first_name: str
    last_name: str
    email: str
    secondary_email: str | None
    plan: str
    company: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def make_population(rng: random.Random, size: int) -> tuple[Customer, ...]:
    """``size`` customers with unique addresses; about 30 % also write from a second one."""
    if size < 1:
        raise ValueError("the population needs at least one customer")
    people: list[Customer] = []
    used: set[str] = set()
    for index in range(size):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = rng.choice(_COMPANIES)
        domain = _ascii(company.split()[0]) + ".example"
        local, n = f"{_ascii(first)}.{_ascii(last)}", 1
        while f"{local}@{domain}" in used:  # namesakes at one company get a number
            n += 1
            local = f"{_ascii(first)}.{_ascii(last)}{n}"
        email = f"{local}@{domain}"
        secondary = None
        if rng.random() < _SECONDARY_SHARE:
            secondary = f"{_ascii(first)}{_ascii(last)[0]}{index}@{rng.choice(_PERSONAL_DOMAINS)}"
        used.update(a for a in (email, secondary) if a)
        plan = rng.choices(PLANS, _PLAN_WEIGHTS)[0]
        people.append(Customer(f"cust-{index:05d}", first, last, email, secondary, plan, company))
    return tuple(people)


class Scenario(StrEnum):
    AI_RESOLVED = "ai_resolved"  # Sunshine chat the AI agent answers on its own
    ESCALATED = "escalated"  # Intercom chat tagged escalate; a Zendesk agent solves it
    BILLING = "billing_attachment"  # Intercom billing question with an invoice attached
    RETURNING = "returning_customer"  # writes to Intercom from the secondary address
    ZENDESK_EMAIL = "zendesk_email"  # ticket opened in Zendesk by email
    SUNSHINE_HANDOFF = "sunshine_handoff"  # AI hands the chat to a human, who solves it
    SALESFORCE_CASE = "salesforce_case"  # console user works a Case with comments


#: What each scenario needs to be served; a scenario is only drawn when all are there.
SCENARIO_PLATFORMS: dict[Scenario, frozenset[str]] = {
    Scenario.AI_RESOLVED: frozenset({"zendesk_conversations"}),
    Scenario.ESCALATED: frozenset({"intercom", "zendesk"}),
    Scenario.BILLING: frozenset({"intercom"}),
    Scenario.RETURNING: frozenset({"intercom", "zendesk"}),
    Scenario.ZENDESK_EMAIL: frozenset({"zendesk"}),
    Scenario.SUNSHINE_HANDOFF: frozenset({"zendesk_conversations"}),
    Scenario.SALESFORCE_CASE: frozenset({"salesforce"}),
}

# Roughly an AI-first contact center: most chats end with the bot, one in four reaches a human.
DEFAULT_WEIGHTS: dict[Scenario, float] = {
    Scenario.AI_RESOLVED: 0.28,
    Scenario.ESCALATED: 0.16,
    Scenario.BILLING: 0.14,
    Scenario.RETURNING: 0.08,
    Scenario.ZENDESK_EMAIL: 0.14,
    Scenario.SUNSHINE_HANDOFF: 0.12,
    Scenario.SALESFORCE_CASE: 0.08,
}


class Step(StrEnum):
    """One thing a person (or the AI agent) does; the engine maps each to an actor call."""

    # Intercom
    IC_START = "intercom.customer_starts"
    IC_CUSTOMER_REPLY = "intercom.customer_replies"
    IC_ADMIN_REPLY = "intercom.admin_replies"
    IC_ADMIN_NOTE = "intercom.admin_notes"
    IC_TAG = "intercom.admin_tags"
    IC_SET_PLAN = "intercom.admin_sets_plan"
    IC_CLOSE = "intercom.admin_closes"
    # Zendesk
    ZD_RECORD_SECONDARY = "zendesk.agent_records_secondary_email"
    ZD_AWAIT_MIRROR = "zendesk.agent_finds_escalation"
    ZD_OPEN_TICKET = "zendesk.requester_opens"
    ZD_REQUESTER_FOLLOW_UP = "zendesk.requester_follows_up"
    ZD_PRIORITY = "zendesk.agent_sets_priority"
    ZD_AGENT_REPLY = "zendesk.agent_replies"
    ZD_AGENT_NOTE = "zendesk.agent_notes"
    ZD_SOLVE = "zendesk.agent_solves"
    # Zendesk Conversations
    SC_OPEN = "sunshine.user_opens_widget"
    SC_USER_SAYS = "sunshine.user_says"
    SC_AI_ANSWERS = "sunshine.ai_answers"
    SC_HAND_OFF = "sunshine.ai_hands_off"
    SC_AI_RELEASE = "sunshine.ai_releases"
    SC_AGENT_REPLIES = "sunshine.agent_replies"
    SC_AGENT_RELEASE = "sunshine.agent_releases"
    # Salesforce
    SF_CASE = "salesforce.user_opens_case"
    SF_COMMENT = "salesforce.user_comments"
    SF_STATUS = "salesforce.user_sets_status"


@dataclass(frozen=True, slots=True)
class Action:
    """A step, the simulated seconds before it, its text and named details."""

    step: Step
    think_s: float = 0.0
    text: str = ""
    details: tuple[tuple[str, str], ...] = ()

    def detail(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.details if key == name), default)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A conversation that starts ``at`` seconds into the run."""

    index: int
    at: float
    scenario: Scenario
    customer: Customer
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class Day:
    population: tuple[Customer, ...]
    arrivals: tuple[Arrival, ...]

    def count(self, scenario: Scenario) -> int:
        return sum(1 for a in self.arrivals if a.scenario is scenario)
