"""Synthetic contact-center traffic against the platform sandboxes (or anything that speaks
their APIs): ``deskstream sandbox traffic``.

A seeded day of customers writing in, an AI agent answering and handing off, and human
agents working the inboxes, played through each platform's public API by the actors in
``sandboxes/<platform>/actors.py``. What it created is written down in a ledger that
tests and benchmarks check the platforms, or the sync, against.

Modules
    ``model``    customers, scenarios, steps, actions, arrivals (plain data), the population.
    ``scripts``  what each scenario does: steps, wording, simulated human delays.
    ``plan``     :func:`plan_day`: Poisson arrivals and scripts from one seed (no I/O).
    ``ledger``   :class:`TrafficStats`, :class:`Ledger`, :class:`TrafficReport` (no I/O).
    ``polite``   :class:`PoliteTransport`: Retry-After, backoff and counting for every client.
    ``cast``     :class:`Targets` (URLs, credentials) and :class:`Cast` (the actors of a run).
    ``engine``   :class:`TrafficGenerator`.

Usage::

    generator = TrafficGenerator(Targets().with_urls(urls), rate=2, duration=60, seed=7,
                                 speed=600)
    report = await generator.run(on_progress=lambda stats, t: print(stats.progress_line(t)))
    print(report.table())
    report.ledger.ids("intercom.conversation")

Scenarios (weights in :data:`DEFAULT_WEIGHTS`): ``ai_resolved`` (a Sunshine chat the AI agent
answers and releases), ``escalated`` (an Intercom chat tagged ``escalate`` after a few
messages; the Zendesk agent waits for the ticket the sync mirrors, replies, solves),
``billing_attachment`` (Intercom, an invoice attached, plan updated, closed),
``returning_customer`` (Intercom from the secondary address the Zendesk profile already
lists), ``zendesk_email`` (a ticket opened by email, answered and solved), ``sunshine_handoff``
(the AI agent passes control with reason, sentiment and summary; a human replies and
releases) and ``salesforce_case`` (a Case with comments, Working then Closed).
"""

from __future__ import annotations

from sandboxes.base.traffic.cast import PLATFORMS, Cast, Targets, sandbox_url
from sandboxes.base.traffic.engine import ProgressCallback, TrafficGenerator
from sandboxes.base.traffic.ledger import (
    OUTCOMES,
    Ledger,
    LedgerEntry,
    PlatformStats,
    TrafficReport,
    TrafficStats,
)
from sandboxes.base.traffic.model import (
    DEFAULT_WEIGHTS,
    PLANS,
    SCENARIO_PLATFORMS,
    Action,
    Arrival,
    Customer,
    Day,
    Scenario,
    Step,
    make_population,
)
from sandboxes.base.traffic.plan import plan_day, scenario_weights
from sandboxes.base.traffic.polite import PoliteTransport, retry_delay
from sandboxes.base.traffic.scripts import ATTACHMENT_BASE, ESCALATE_TAG

__all__ = [
    "ATTACHMENT_BASE",
    "DEFAULT_WEIGHTS",
    "ESCALATE_TAG",
    "OUTCOMES",
    "PLANS",
    "PLATFORMS",
    "SCENARIO_PLATFORMS",
    "Action",
    "Arrival",
    "Cast",
    "Customer",
    "Day",
    "Ledger",
    "LedgerEntry",
    "PlatformStats",
    "PoliteTransport",
    "ProgressCallback",
    "Scenario",
    "Step",
    "Targets",
    "TrafficGenerator",
    "TrafficReport",
    "TrafficStats",
    "make_population",
    "plan_day",
    "retry_delay",
    "sandbox_url",
    "scenario_weights",
]
