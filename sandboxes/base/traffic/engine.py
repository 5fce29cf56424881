""":class:`TrafficGenerator`: play a planned day against the platforms, and keep the books.

Arrivals start at their planned offsets (real seconds from the start of the run); each runs
its script under a semaphore of ``concurrency`` open conversations, sleeping each step's
``think_s / speed`` first. Arrivals that find every slot taken wait for one, so a slow
platform lowers the real rate instead of piling up unbounded work. After ``duration`` no
conversation starts; the run waits up to ``drain_timeout`` for the open ones to finish and
cancels the rest (outcome ``cancelled``).

An API error that survives the polite transport fails that conversation only (outcome
``failed``, counted in ``stats.errors`` with a redacted sample); the run goes on. An
escalation nobody mirrors into Zendesk within ``mirror_timeout`` is not an error: its
outcome is ``awaiting_sync`` (no sync is running, or it is slower than the timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from connectors.base.http import redact
from connectors.base.links import case_link_id
from sandboxes.base.traffic.cast import PLATFORMS, Cast, Targets, TransportFactory
from sandboxes.base.traffic.ledger import Ledger, LedgerEntry, TrafficReport, TrafficStats
from sandboxes.base.traffic.model import Action, Arrival, Day, Scenario, Step
from sandboxes.base.traffic.plan import plan_day
from sandboxes.base.traffic.scripts import ATTACHMENT_BASE, ESCALATE_TAG

if TYPE_CHECKING:
    from sandboxes.intercom.actors import IntercomCustomer
    from sandboxes.zendesk.actors import ZendeskRequester

__all__ = ["ProgressCallback", "TrafficGenerator"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[TrafficStats, float], None]


class _NotMirrored(Exception):
    """The escalation was not mirrored in time: the rest of the script cannot happen."""


class _Conversation:
    """One arrival's script, played step by step with the cast's actors."""

    def __init__(self, run: TrafficGenerator, cast: Cast, arrival: Arrival, entry: LedgerEntry):
        self.run = run
        self.cast = cast
        self.arrival = arrival
        self.customer = arrival.customer
        self.entry = entry
        self.intercom_id = ""
        self.ticket_id = 0
        self.requester: ZendeskRequester | None = None
        self.sunshine_id = ""
        self.case_id = ""
        # Staff take conversations round-robin, so one seed always pairs the same people.
        admins, agents = cast.intercom_admins, cast.workspace_agents
        self.admin = admins[arrival.index % len(admins)] if admins else None
        self.workspace_agent = agents[arrival.index % len(agents)] if agents else None

    async def play(self) -> None:
        handlers = {
            "intercom": self._intercom,
            "zendesk": self._zendesk,
            "sunshine": self._sunshine,
            "salesforce": self._salesforce,
        }
        for action in self.arrival.actions:
            if action.think_s:
                await asyncio.sleep(action.think_s / self.run.speed)
            await handlers[action.step.value.partition(".")[0]](action)

    def _wrote(self, kind: str, count: int = 1) -> None:
        self.entry.writes[kind] += count

    def _id(self, kind: str, value: str | int) -> None:
        self.entry.ids[kind] = str(value)

    def _intercom_customer(self, action: Action) -> tuple[str, IntercomCustomer]:
        """The address this step writes from, and the customer actor for it."""
        secondary = self.customer.secondary_email
        wanted = secondary if action.detail("as") == "secondary" else None
        email = wanted or self.customer.email
        return email, self.cast.intercom_customer(email, self.customer.name)

    async def _intercom(self, action: Action) -> None:
        text, admin, stats = action.text, self.admin, self.run.stats
        assert admin is not None
        match action.step:
            case Step.IC_START:
                email, customer = self._intercom_customer(action)
                self.intercom_id = await customer.start_conversation(text)
                self.entry.email = email
                self._id("intercom.contact", await customer.identify())
                self._id("intercom.conversation", self.intercom_id)
                self.run.ledger.people["intercom"].add(email)
                self._wrote("intercom.conversation")
            case Step.IC_CUSTOMER_REPLY:
                _, customer = self._intercom_customer(action)
                attachment = action.detail("attachment")
                urls = [attachment] if attachment else []
                await customer.reply(self.intercom_id, text, attachment_urls=urls)
                self._wrote("intercom.part")
                self._wrote("intercom.attachment", len(urls))
            case Step.IC_ADMIN_REPLY:
                await admin.reply(self.intercom_id, text)
                self._wrote("intercom.part")
            case Step.IC_ADMIN_NOTE:
                await admin.note(self.intercom_id, text)
                self._wrote("intercom.part")
            case Step.IC_TAG:
                await admin.tag(self.intercom_id, action.detail("tag"))
                self._wrote("intercom.tag")
                if action.detail("tag") == ESCALATE_TAG:
                    stats.conversations["escalated"] += 1
            case Step.IC_SET_PLAN:
                contact_id = self.entry.ids["intercom.contact"]
                await admin.set_contact_attributes(contact_id, {"plan": action.detail("plan")})
                self._wrote("intercom.contact_update")
            case Step.IC_CLOSE:
                await admin.close(self.intercom_id)
                self._wrote("intercom.part")
                self.entry.outcome = "solved"

    async def _zendesk(self, action: Action) -> None:
        agent, text, customer = self.cast.zendesk_agent, action.text, self.customer
        assert agent is not None
        match action.step:
            case Step.ZD_RECORD_SECONDARY if customer.secondary_email:
                user_id, added = await self.cast.zendesk_profile(customer)
                self._id("zendesk.user", user_id)
                self.run.ledger.people["zendesk"].add(customer.email)
                self._wrote("zendesk.identity", int(added))
            case Step.ZD_AWAIT_MIRROR:
                link = case_link_id(
                    "intercom", self.cast.targets.intercom_connector_id, self.intercom_id
                )
                ticket = None
                if self.run.mirror_timeout > 0:
                    ticket = await agent.wait_for_ticket(link, patience_s=self.run.mirror_timeout)
                if ticket is None:
                    raise _NotMirrored(link)
                self.ticket_id = int(ticket["id"])
                self._id("zendesk.escalation", self.ticket_id)
            case Step.ZD_OPEN_TICKET:
                self.requester = self.cast.zendesk_requester(customer)
                # One key per planned arrival: a retried create returns the same ticket.
                key = f"deskstream-traffic-{self.run.seed}-{self.arrival.index}"
                subject = action.detail("subject")
                self.ticket_id = await self.requester.open_ticket(
                    subject, text, idempotency_key=key
                )
                self._id("zendesk.ticket", self.ticket_id)
                self._id("zendesk.requester", self.requester.user_id or 0)
                self.run.ledger.people["zendesk"].add(customer.email)
                self._wrote("zendesk.ticket")
                self._wrote("zendesk.comment")
            case Step.ZD_REQUESTER_FOLLOW_UP:
                assert self.requester is not None
                await self.requester.follow_up(self.ticket_id, text)
                self._wrote("zendesk.comment")
            case Step.ZD_PRIORITY:
                await agent.set_priority(self.ticket_id, action.detail("priority"))
                self._wrote("zendesk.update")
            case Step.ZD_AGENT_REPLY:
                await agent.reply(self.ticket_id, text)
                self._wrote("zendesk.comment")
            case Step.ZD_AGENT_NOTE:
                await agent.note(self.ticket_id, text)
                self._wrote("zendesk.comment")
            case Step.ZD_SOLVE:
                await agent.solve(self.ticket_id, text or None)
                self._wrote("zendesk.update")
                self._wrote("zendesk.comment", 1 if text else 0)
                self.entry.outcome = "solved"

    async def _sunshine(self, action: Action) -> None:
        ai, human, text = self.cast.ai_agent, self.workspace_agent, action.text
        user = self.cast.sunshine_user(self.customer)
        assert ai is not None
        assert human is not None
        match action.step:
            case Step.SC_OPEN:
                self.sunshine_id = await user.open_conversation()
                self.entry.email = self.customer.email
                self._id("sunshine.user", await user.ensure_user())
                self._id("sunshine.conversation", self.sunshine_id)
                self.run.ledger.people["zendesk_conversations"].add(self.customer.key)
                self._wrote("sunshine.conversation")
            case Step.SC_USER_SAYS:
                await user.say(self.sunshine_id, text)
                self._wrote("sunshine.message")
            case Step.SC_AI_ANSWERS:
                await ai.answer(self.sunshine_id, text)
                self._wrote("sunshine.message")
            case Step.SC_HAND_OFF:
                await ai.hand_off(
                    self.sunshine_id,
                    reason=action.detail("reason"),
                    sentiment=action.detail("sentiment"),
                    summary=action.detail("summary"),
                )
                self._wrote("sunshine.control")
                self.run.stats.conversations["escalated"] += 1
                self.run.stats.conversations["handed_off"] += 1
            case Step.SC_AI_RELEASE:
                await ai.release(self.sunshine_id)
                self._wrote("sunshine.control")
                self.entry.outcome = "resolved"
            case Step.SC_AGENT_REPLIES:
                await human.reply(self.sunshine_id, text)
                self._wrote("sunshine.message")
            case Step.SC_AGENT_RELEASE:
                await human.release(self.sunshine_id)
                self._wrote("sunshine.control")
                self.entry.outcome = "solved"

    async def _salesforce(self, action: Action) -> None:
        console = self.cast.console_user
        assert console is not None
        match action.step:
            case Step.SF_CASE:
                contact_id, created = await self.cast.salesforce_contact(self.customer)
                self.case_id = await console.create_case(
                    contact_id=contact_id,
                    subject=action.detail("subject"),
                    description=action.text,
                    origin=action.detail("origin", "Phone"),
                    priority=action.detail("priority", "Medium"),
                )
                self.entry.email = self.customer.email
                self._id("salesforce.contact", contact_id)
                self._id("salesforce.case", self.case_id)
                self.run.ledger.people["salesforce"].add(self.customer.key)
                self._wrote("salesforce.contact", int(created))
                self._wrote("salesforce.case")
            case Step.SF_COMMENT:
                published = action.detail("published", "true") == "true"
                await console.comment(self.case_id, action.text, published=published)
                self._wrote("salesforce.comment")
            case Step.SF_STATUS:
                await console.set_status(self.case_id, action.detail("status"))
                self._wrote("salesforce.update")
                if action.detail("status") == "Closed":
                    self.entry.outcome = "solved"


class TrafficGenerator:
    """A seeded contact-center day against Intercom, Zendesk, Sunshine and Salesforce.

    ``rate`` conversations per second arrive for ``duration`` seconds (Poisson); human
    delays are divided by ``speed`` (60: a simulated minute per second). ``platforms``
    limits the run to some platforms; scenarios that need others are not drawn. The plan is
    made at construction (:attr:`day`), so it can be inspected before :meth:`run`.
    """

    def __init__(
        self,
        targets: Targets | None = None,
        *,
        rate: float,
        duration: float,
        seed: int = 0,
        speed: float = 60.0,
        population: int = 200,
        concurrency: int = 200,
        platforms: Collection[str] | None = None,
        weights: Mapping[Scenario, float] | None = None,
        mirror_timeout: float = 30.0,
        drain_timeout: float | None = None,
        transport_factory: TransportFactory | None = None,
        attachment_base: str = ATTACHMENT_BASE,
    ) -> None:
        if speed <= 0 or concurrency < 1:
            raise ValueError("speed must be positive and concurrency at least 1")
        chosen = tuple(platforms) if platforms is not None else PLATFORMS
        unknown = sorted(set(chosen) - set(PLATFORMS))
        if unknown:
            raise ValueError(
                f"unknown platform(s) {', '.join(unknown)}; known: {', '.join(PLATFORMS)}"
            )
        self.targets = targets or Targets()
        self.platforms = chosen
        self.seed = seed
        self.speed = speed
        self.concurrency = concurrency
        self.mirror_timeout = mirror_timeout
        self.drain_timeout = drain_timeout
        self.transport_factory = transport_factory
        self.day: Day = plan_day(
            seed=seed,
            rate=rate,
            duration=duration,
            population=population,
            weights=weights,
            platforms=chosen,
            attachment_base=attachment_base,
        )
        self.stats = TrafficStats()
        self.ledger = Ledger()

    async def _converse(
        self, cast: Cast, slots: asyncio.Semaphore, arrival: Arrival, t0: float
    ) -> None:
        customer = arrival.customer
        entry = LedgerEntry(arrival.index, arrival.scenario, customer.key, customer.email)
        self.ledger.entries.append(entry)
        stats = self.stats
        try:
            async with slots:
                await self._play(cast, arrival, entry, t0)
        except asyncio.CancelledError:
            entry.outcome = "cancelled"
            stats.conversations["cancelled"] += 1
            raise

    async def _play(self, cast: Cast, arrival: Arrival, entry: LedgerEntry, t0: float) -> None:
        stats = self.stats
        entry.started_at = time.monotonic() - t0
        stats.conversations["started"] += 1
        stats.by_scenario[arrival.scenario.value] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await _Conversation(self, cast, arrival, entry).play()
        except _NotMirrored:
            entry.outcome = "awaiting_sync"
        except Exception as exc:  # one conversation's failure must not end the day
            entry.outcome = "failed"
            entry.error = redact(f"{type(exc).__name__}: {exc}", 300)
            stats.error(f"#{arrival.index} {arrival.scenario.value}: {entry.error}")
            logger.warning(
                "traffic conversation failed arrival=%s scenario=%s error=%s",
                arrival.index,
                arrival.scenario.value,
                entry.error,
            )
        finally:
            stats.in_flight -= 1
            entry.finished_at = time.monotonic() - t0
        # CancelledError skips this: _converse counts it as cancelled.
        stats.conversations[entry.outcome] += 1

    async def run(
        self, *, on_progress: ProgressCallback | None = None, progress_every: float = 1.0
    ) -> TrafficReport:
        """Play the day; returns the stats and the ledger (also on :attr:`stats`/:attr:`ledger`)."""
        t0 = time.monotonic()
        slots = asyncio.Semaphore(self.concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def report_progress() -> None:
            while on_progress is not None:
                await asyncio.sleep(progress_every)
                on_progress(self.stats, time.monotonic() - t0)

        reporter = asyncio.create_task(report_progress())
        try:
            async with Cast(
                self.targets, self.platforms, self.stats, transport_factory=self.transport_factory
            ) as cast:
                t0 = time.monotonic()  # the plan's clock starts once the staff signed in
                for arrival in self.day.arrivals:
                    delay = t0 + arrival.at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(self._converse(cast, slots, arrival, t0)))
                if tasks:
                    _, late = await asyncio.wait(tasks, timeout=self.drain_timeout)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*late, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        return TrafficReport(self.stats, self.ledger, time.monotonic() - t0, len(self.day.arrivals))
