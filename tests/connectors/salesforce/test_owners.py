"""Owners in Salesforce, against the sandbox org: the agent directory (active Users by SOQL,
the integration user never an owner) and the sink writing a Case's ``OwnerId`` for the owner
a command names by email: at create, on update, nobody as the configured queue; an email no
User has, or nobody without a queue, is left out of the write."""

from __future__ import annotations

from collections import Counter
from typing import Any

from connectors.base.commands import CREATED_OWNER
from connectors.base.fingerprints import fingerprint
from sandboxes.base.staff import SHARED
from schemas.models import Actor, ActorKind, CaseStatus, CommandAction, EntityType, SyncCommand
from tests.connectors.salesforce.sink_harness import case, command, open_org, upsert
from tests.sandboxes.salesforce.conftest import SalesforceEnv

ADA, BEN = SHARED[0].email, SHARED[1].email


def _owner(email: str | None) -> Actor | None:
    return Actor(kind=ActorKind.AGENT, email=email) if email else None


def _reassign(
    case_id: str,
    email: str | None,
    key: str,
    *,
    data: dict[str, Any] | None = None,
    changed: list[str] | None = None,
) -> SyncCommand:
    return command(
        EntityType.CASE,
        CommandAction.UPDATE,
        case(assignee=_owner(email), **(data or {})),
        target=case_id,
        key=key,
        changed_fields=changed or ["assignee"],
    )


async def test_the_directory_reads_active_users(env: SalesforceEnv) -> None:
    staff = env.sandbox.org.staff_user_ids
    async with open_org(env, service_account_id=env.sandbox.org.user_id) as org:
        agents = org.sink.agents
        assert agents is not None
        outcomes: Counter[str] = Counter()
        agents.on_lookup = lambda direction, outcome: outcomes.update([f"{direction}:{outcome}"])
        assert await agents.agent_for(ADA.upper()) == staff[ADA]
        assert await agents.email_of(staff[ADA]) == ADA  # learned with the email: no call
        assert await agents.email_of(staff[BEN]) == BEN
        assert await agents.email_of(env.sandbox.org.user_id) is None  # the integration
        assert await agents.email_of(env.sandbox.org.queue_id) is None  # a queue: no call
        assert await agents.agent_for("nobody@sandbox.example") is None
        assert outcomes == Counter(
            {"email_to_id:called": 2, "id_to_email:cached": 1, "id_to_email:called": 3}
        )


async def test_owner_at_create_on_update_and_nobody_as_the_queue(env: SalesforceEnv) -> None:
    staff, queue = env.sandbox.org.staff_user_ids, env.sandbox.org.queue_id
    async with open_org(env, unassigned_owner_id=queue) as org:
        created = await org.sink.execute(
            upsert([], data=case(assignee=_owner(ADA)), changed_fields=["assignee"])
        )
        case_id = str(created.target_entity_id)
        assert org.records("Case")[case_id]["OwnerId"] == staff[ADA]
        assert fingerprint("salesforce", case_id, "assignee", ADA) in created.fingerprints
        assert created.created_ids[CREATED_OWNER] == staff[ADA]

        moved = await org.sink.execute(_reassign(case_id, BEN, "cmd-2"))
        assert org.records("Case")[case_id]["OwnerId"] == staff[BEN]
        assert moved.fingerprints == [fingerprint("salesforce", case_id, "assignee", BEN)]
        assert moved.api_calls == 2  # the User query, the PATCH
        # What the normaliser reads back names the same user, as an agent.
        read = await org.sink.client.get("Case", case_id)
        owner = org.sink.vocabulary.case(read, case_id).assignee
        assert owner is not None
        assert (owner.kind, owner.id) == (ActorKind.AGENT, staff[BEN])

        nobody = await org.sink.execute(_reassign(case_id, None, "cmd-3"))
        assert org.records("Case")[case_id]["OwnerId"] == queue
        assert nobody.fingerprints == [fingerprint("salesforce", case_id, "assignee", "")]
        assert nobody.api_calls == 1
        read = await org.sink.client.get("Case", case_id)
        assert org.sink.vocabulary.case(read, case_id).assignee is None  # a queue: nobody


async def test_what_cannot_be_owned_is_left_out_and_the_rest_written(env: SalesforceEnv) -> None:
    async with open_org(env) as org:  # no unassigned_owner_id
        case_id = str((await org.sink.execute(upsert([]))).target_entity_id)
        before = org.records("Case")[case_id]["OwnerId"]
        stranger = await org.sink.execute(
            _reassign(
                case_id,
                "stranger@elsewhere.example",
                "cmd-2",
                data={"status": CaseStatus.ON_HOLD},
                changed=["status", "assignee"],
            )
        )
        record = org.records("Case")[case_id]
        assert (record["Status"], record["OwnerId"]) == ("Escalated", before)
        assert stranger.skipped == ["assignee"]
        assert "no Salesforce agent has the email stranger@elsewhere.example" in stranger.detail
        nobody = await org.sink.execute(_reassign(case_id, None, "cmd-3"))
        assert (nobody.written, nobody.skipped) == (False, ["assignee"])
        assert "UNASSIGNED_OWNER_ID" in nobody.detail
        assert org.records("Case")[case_id]["OwnerId"] == before
