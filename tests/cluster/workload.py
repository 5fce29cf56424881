"""The cluster suite's traffic and its counts.

Each conversation goes the whole way: a customer writes twice in Intercom, an admin tags it
``escalate`` (→ one Zendesk ticket holding both messages), an agent answers in Zendesk (→ one
reply in Intercom) and solves the ticket (→ the conversation closed). Disruptions (a worker
killed, a broker killed, a platform down, a rolling restart) run at the milestones the test
chooses, while the traffic is in flight.

The verdict is counts on both platforms, read through their public APIs, plus the workers'
own logs: how many times each command was executed with an effect.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.dlq_cli import read_letters
from app.rehearsal import SyncStack
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent
from schemas.errors import DeskstreamError

__all__ = ["Counts", "Milestone", "Workload"]

#: a milestone reached: "started" (every conversation escalated), "ticketed" (every ticket
#: complete), "answered" (every agent reply and solve made in Zendesk)
Milestone = Callable[[str], Awaitable[None]]

_EXECUTED = re.compile(r"sink (?:executed )?command=(\S+) action=\S+ target=\S+ written=True")


@dataclass
class Counts:
    conversations: int
    tickets: int
    #: tickets not mirroring one of this run's conversations
    orphaned: int
    #: conversation → comments on its ticket (expected 3: two customer messages, one reply)
    comments: dict[str, int] = field(default_factory=dict)
    #: conversation → Deskstream's replies in it (expected 1: the agent's answer)
    replies: dict[str, int] = field(default_factory=dict)
    #: conversation → its Zendesk users with the customer's email (expected 1)
    users: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    #: commands a sink executed with an effect more than once (the workers' logs)
    executed_twice: list[str] = field(default_factory=list)
    commands_executed: int = 0
    dead_letters: int = 0

    def problems(self) -> list[str]:
        wrong = [
            *(f"{c}: {n} comments" for c, n in self.comments.items() if n != 3),
            *(f"{c}: {n} replies" for c, n in self.replies.items() if n != 1),
            *(f"{c}: {n} users" for c, n in self.users.items() if n != 1),
        ]
        if self.tickets != self.conversations:
            wrong.append(f"{self.tickets} tickets for {self.conversations} conversations")
        if self.orphaned:
            wrong.append(f"{self.orphaned} orphaned tickets")
        if self.closed != self.conversations:
            wrong.append(f"{self.closed} of {self.conversations} conversations closed")
        if self.executed_twice:
            wrong.append(f"commands executed twice: {self.executed_twice[:10]}")
        if self.dead_letters:
            wrong.append(f"{self.dead_letters} dead letters")
        return wrong

    def summary(self) -> str:
        return (
            f"conversations={self.conversations} tickets={self.tickets} "
            f"orphaned={self.orphaned} comments={sum(self.comments.values())} "
            f"replies={sum(self.replies.values())} closed={self.closed} "
            f"commands_executed={self.commands_executed} "
            f"executed_twice={len(self.executed_twice)} dead_letters={self.dead_letters}"
        )


class Workload:
    def __init__(self, stack: SyncStack, size: int, *, concurrency: int = 6) -> None:
        self.stack = stack
        self.size = size
        self._gate = asyncio.Semaphore(concurrency)
        self._tag = uuid.uuid4().hex[:6]
        #: conversation id → the customer's email
        self.started: dict[str, str] = {}

    async def run(self, milestone: Milestone) -> Counts:
        stack = self.stack
        within = 240.0 + 10 * self.size  # per phase: a kill costs a 30 s session timeout
        await asyncio.gather(*(self.escalate(n) for n in range(self.size)))
        await milestone("started")
        await stack.eventually(
            self.every(self.ticket_complete),
            f"{self.size} tickets, each with both customer messages",
            within=within,
            every=2.0,
        )
        await milestone("ticketed")
        await asyncio.gather(*(self._answer(c) for c in self.started))
        await milestone("answered")
        try:
            await stack.eventually(
                self.every(self._replied_and_closed),
                "every agent reply in Intercom and every conversation closed",
                within=within,
                every=2.0,
            )
        except DeskstreamError as exc:
            raise DeskstreamError(f"{await self.describe()}\n{exc}") from None
        await stack.settle(10)  # late redeliveries, retries and echoes
        return await self.count()

    async def escalate(self, n: int) -> None:
        email = f"cluster-{self._tag}-{n}@example.com"
        async with self._gate:
            customer = IntercomCustomer(self.stack.ic, email=email, name=f"Customer {n}")
            conversation = await customer.start_conversation(f"Order {n} never arrived")
            await customer.reply(conversation, f"Tracking number TRK{n:04d}")
            admin = IntercomAdmin(self.stack.ic, admin_id=self.stack.human_admin_id)
            await admin.tag(conversation, "escalate")
        self.started[conversation] = email

    async def _answer(self, conversation: str) -> None:
        async with self._gate:
            ticket = await self.stack.ticket_for(conversation)
            assert ticket is not None
            agent = ZendeskAgent(self.stack.zd_agent)
            await agent.reply(ticket["id"], f"Re-shipped, ticket {ticket['id']}")
            await agent.solve(ticket["id"])

    def every(self, check: Callable[[str], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            results = []
            for conversation in self.started:  # one at a time: people share the rate limit
                async with self._gate:
                    results.append(await check(conversation))
                if not results[-1]:
                    return False
            return True

        return probe

    async def ticket_complete(self, conversation: str) -> bool:
        ticket = await self.stack.ticket_for(conversation)
        return ticket is not None and len(await self.stack.comments(ticket["id"])) >= 2

    def bot_parts(self, conversation: dict[str, Any]) -> list[dict[str, Any]]:
        parts = conversation["conversation_parts"]["conversation_parts"]
        bot = self.stack.bot_admin_id
        return [
            p
            for p in parts
            if str((p.get("author") or {}).get("id")) == bot
            and p.get("part_type") == "comment"
            and p.get("body")
        ]

    async def _replied_and_closed(self, conversation: str) -> bool:
        found = await self.stack.conversation(conversation)
        return bool(self.bot_parts(found)) and found.get("state") == "closed"

    async def describe(self) -> str:
        """Where each unfinished conversation stands, with its link's audit trail."""
        lines = []
        for conversation in self.started:
            found = await self.stack.conversation(conversation)
            replies, state = len(self.bot_parts(found)), found.get("state")
            if replies == 1 and state == "closed":
                continue
            ticket = await self.stack.ticket_for(conversation)
            lines.append(
                f"conversation {conversation}: replies={replies} state={state} "
                f"ticket={ticket and ticket['id']} status={ticket and ticket['status']}\n"
                f"{await self.stack.trail(self.stack.link(conversation))}"
            )
        return "\n".join(lines) or "every conversation finished"

    async def count(self) -> Counts:
        stack = self.stack
        listed = await stack.zd_agent.get("/api/v2/tickets", params={"per_page": 100})
        tickets: list[dict[str, Any]] = listed.json()["tickets"]
        ours = {stack.link(c) for c in self.started}
        counts = Counts(
            conversations=len(self.started),
            tickets=int(listed.json()["count"]),
            orphaned=sum(1 for t in tickets if t.get("external_id") not in ours),
        )
        for conversation, email in self.started.items():
            ticket = await stack.ticket_for(conversation)
            counts.comments[conversation] = (
                len(await stack.comments(ticket["id"])) if ticket is not None else 0
            )
            found = await stack.conversation(conversation)
            counts.replies[conversation] = len(self.bot_parts(found))
            counts.closed += found.get("state") == "closed"
            counts.users[conversation] = len(await stack.zendesk_users(email))
        executions: Counter[str] = Counter()
        for worker in stack.workers:
            executions.update(_EXECUTED.findall(worker.log.read_text(errors="replace")))
        counts.commands_executed = len(executions)
        counts.executed_twice = sorted(c for c, n in executions.items() if n > 1)
        counts.dead_letters = len(await read_letters(stack.settings))
        return counts
