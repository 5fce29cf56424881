"""An owner set in Zendesk just before Zendesk goes down for longer than the sync stage's
retries span, through real Kafka, a worker process and the three sandboxes.

A person assigns the ticket to Ada; the webhook reaches the worker once Zendesk's API answers
503 to everything, for 45 s. The report names Ada by her Zendesk id, so the worker must ask
Zendesk for her email (``app.agents.owners``): the lookup fails, the connector's lookups go
quiet, and the report is decided again once the quiet ends rather than within it. Before, its
five retries (1 to 16 s apart, 31 s in all) each asked the dead platform, and the owner never
reached Salesforce or Intercom. Now Ada owns the Case and the conversation once Zendesk answers
again, with one owner write to each, and the worker asked Zendesk's directory a handful of
times rather than once per retry.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from app.agents.owners import QUIET_S
from app.rehearsal import SyncStack, sync_stack
from sandboxes.base.faults import FaultProfile
from sandboxes.base.staff import SHARED
from sandboxes.zendesk.actors import ZendeskAgent

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

#: Zendesk's outage: longer than the retries' 31 s, shorter than their span once quiet
OUTAGE_S = 45.0
#: when the outage starts, after the fault profile is applied: time for the person's own
#: assignment (made at once), none for its webhook
OUTAGE_FROM_S = 4.0
#: how long every webhook is held, so that the assignment's arrives inside the outage
WEBHOOK_HELD_MS = 8000.0


@pytest.fixture
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    folder = tmp_path_factory.mktemp("owner-outage")
    async with sync_stack(
        kafka_bootstrap_servers, folder, name="owner-outage", salesforce="pubsub"
    ) as running:
        yield running


async def _zendesk_lookups(stack: SyncStack) -> Counter[str]:
    """The worker's ``deskstream_agent_lookups_total`` for Zendesk ids → emails, by outcome."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{stack.worker.url}/metrics")).text
    found: Counter[str] = Counter()
    series = 'deskstream_agent_lookups_total{direction="id_to_email",'  # labels sorted
    for line in text.splitlines():
        if line.startswith(series) and 'platform="zendesk"' in line:
            labels, _, value = line.partition("} ")
            outcome = labels.split('outcome="')[1].split('"')[0]
            found[outcome] += int(float(value))
    return found


async def test_an_owner_set_just_before_an_outage_follows_once_zendesk_answers(
    stack: SyncStack,
) -> None:
    tag = uuid.uuid4().hex[:8]
    conversation, ticket_id, case_id = await stack.escalated(
        f"noor-{tag}@example.com", f"My invoice is wrong {tag}"
    )
    agent, person = ZendeskAgent(stack.zd_agent), stack.console()
    ada = SHARED[0].email
    ada_zendesk = await agent.agent_id(ada)
    admins = (await stack.ic.get("/admins")).json()["admins"]
    want = (await person.user_for(ada), next(str(a["id"]) for a in admins if a["email"] == ada))

    await stack.settle(2.0)
    before = await _zendesk_lookups(stack)
    outage = ((OUTAGE_FROM_S, OUTAGE_FROM_S + OUTAGE_S),)
    faults = FaultProfile(webhook_delay_ms=WEBHOOK_HELD_MS, outage_windows=outage)
    await stack.set_faults("zendesk", faults)
    start = time.monotonic()
    # Its webhook is on its way, held: Zendesk's API goes down before it arrives.
    await agent.assign(ticket_id, ada_zendesk)

    async def owners() -> tuple[str, str] | None:
        case = await person.case(case_id)
        assignee = (await stack.conversation(conversation))["admin_assignee_id"]
        found = (str(case["OwnerId"]), str(assignee))
        return found if found == want else None

    await stack.eventually(owners, "Ada owns the Case and the conversation", within=240)
    followed_s = time.monotonic() - start
    await stack.settle(2.0)
    lookups = await _zendesk_lookups(stack) - before
    writes = Counter(w.platform for w in stack.worker_writes(start))
    print(
        f"\n[owner outage] Ada followed {followed_s:.0f} s after the assignment "
        f"(Zendesk down {OUTAGE_S:.0f} s, quiet {QUIET_S:.0f} s); Zendesk id → email "
        f"lookups {dict(lookups)}; worker writes {dict(writes)}"
    )
    # The owner came through the outage: asked of Zendesk only after it had ended.
    assert followed_s >= OUTAGE_FROM_S + OUTAGE_S
    assert lookups["failed"] >= 1
    assert lookups["called"] >= 1
    # One quiet window per failed call: the retries did not each ask the dead platform.
    assert lookups["failed"] <= OUTAGE_S // QUIET_S + 1
    # One owner write to each other record.
    assert writes["salesforce"] == 1
    assert writes["intercom"] == 1
