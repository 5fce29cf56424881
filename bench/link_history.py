"""A long life of one link, input by input, for the link-state benchmarks.

An Intercom conversation escalated to a Zendesk ticket, then round after round of people on
both sides: the customer writes (copied to the ticket), the agent answers (copied to the
conversation), the agent solves the ticket (the conversation closes), the customer writes
again and reopens it. Every command the planner emits is answered as the sinks would
(a write result with the created ids and fingerprints) and followed by the echo the target
platform sends of it. No Kafka, no HTTP: the planner's inputs only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from connectors.base.commands import CREATED_MESSAGE, thread_key
from connectors.base.fingerprints import fingerprint
from schemas.models import (
    Case,
    CaseStatus,
    CommandAction,
    EntityType,
    Envelope,
    Op,
    SyncCommand,
    WriteOutcome,
    WriteResult,
)
from streams.config import SyncConfig
from tests.streams.builders import BOT, IC, ZD, World

__all__ = ["CONFIG", "History"]

CONFIG = SyncConfig.model_validate(
    {
        "connectors": {"intercom": IC, "zendesk": ZD},
        "flows": {"status_round_trip": {"reopen": "both"}},
    }
)
_RECORD = {"intercom": "conv-1", "zendesk": "t-7"}


def _part_id(n: int) -> str:
    """An Intercom conversation part id, as long as real ones."""
    return str(28_417_000_000 + n)


def _comment_id(n: int) -> str:
    """A Zendesk comment id, as long as real ones."""
    return str(41_877_766_000_000 + n)


class History:
    """The next input of the link (``next``) and the answers to what it caused (``answer``)."""

    def __init__(self) -> None:
        self.world = World()
        self._queue: deque[Envelope | WriteResult] = deque(
            [
                self.world.conversation(op=Op.CREATE),
                self.world.part(_part_id(0), "I was charged twice for my order"),
                self.world.conversation(tags=["escalate"], changed=["tags"]),
            ]
        )
        self._round = 0
        self._made = 0

    def next(self) -> Envelope | WriteResult:
        if not self._queue:
            self._people()
        return self._queue.popleft()

    def _people(self) -> None:
        world, n = self.world, self._round
        self._round += 1
        step = n % 4
        if step == 0:
            self._queue.append(world.part(_part_id(n + 1), f"Any news about my refund? ({n})"))
        elif step == 1:
            self._queue.append(world.comment(_comment_id(n), f"The refund is on its way ({n})"))
        elif step == 2:
            self._queue.append(world.ticket(status=CaseStatus.SOLVED, changed=["status"]))
        else:
            self._queue.append(world.conversation(status=CaseStatus.OPEN, changed=["status"]))

    def answer(self, commands: Iterable[SyncCommand]) -> None:
        """The sinks' write result for each command, then its echo from the target."""
        for command in commands:
            platform = command.target.platform.value
            record = _RECORD[platform]
            created: dict[str, str] = {}
            fingerprints: list[str] = []
            echo: Envelope | None = None
            data = command.data
            if command.target.entity_type is EntityType.MESSAGE:
                self._made += 1
                n = 1_000_000 + self._made  # apart from the people's own ids
                made = _comment_id(n) if platform == "zendesk" else _part_id(n)
                created[CREATED_MESSAGE] = made
                text = getattr(data, "body_text", "") or ""
                if platform == "zendesk":
                    echo = self.world.comment(made, text, actor=BOT)
                else:
                    echo = self.world.part(made, text, author=BOT)
            elif command.action is CommandAction.UPSERT:
                created = {thread_key(i): f"t-c-{i}" for i in range(len(command.thread))}
            elif isinstance(data, Case) and "status" in command.changed_fields:
                fingerprints.append(fingerprint(platform, record, "status", data.status.value))
                if platform == "zendesk":
                    echo = self.world.ticket(status=data.status, actor=BOT)
                else:
                    echo = self.world.conversation(status=data.status, actor=BOT)
            self._queue.append(
                WriteResult(
                    command_id=command.command_id,
                    link_id=command.link_id,
                    target=command.target,
                    outcome=WriteOutcome.WRITTEN,
                    target_entity_id=record,
                    latency_ms=10.0,
                    fingerprints=fingerprints,
                    written_at=self.world.tick(),
                    created_ids=created,
                )
            )
            if echo is not None:
                self._queue.append(echo)
