"""The sinks' dry-run mode (benchmarks only): the runner answers every command as written
without calling the platform, with what the sync stage needs from a write's answer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from app.agents.dry_run import DRY_RUN_PREFIX
from app.agents.sinks import SinkRunner
from app.metrics import Metrics
from app.settings import Settings, load_settings
from connectors.base.commands import CREATED_MESSAGE
from connectors.base.settings import ConnectorSettings
from schemas.models import CaseStatus, CommandAction, EntityType, WriteOutcome
from tests.connectors.zendesk.test_sink import CUSTOMER, case, command, message, upsert

#: nothing listens there: a call that left the runner would fail
NOWHERE = "http://127.0.0.1:9"


def _settings(dry_run: bool) -> Settings:
    connector = ConnectorSettings(
        platform="zendesk",
        api_base_url=NOWHERE,
        api_user="deskstream@example.com",
        api_token=SecretStr("token"),
        service_account_id="1",
        secret=SecretStr("secret"),
    )
    return load_settings(connectors={"zd": connector}, sink_dry_run=dry_run, sink_max_attempts=1)


async def test_a_dry_run_answers_every_command_as_written_without_a_call() -> None:
    runner = SinkRunner(_settings(True), "zendesk", Metrics(CollectorRegistry()))
    thread = [message(CUSTOMER, "Order 7 never arrived", minutes=0), message(CUSTOMER, "?", 1)]
    create = upsert(thread)
    write, record, letter = await runner.run(create, share=(1, 1))
    assert letter is None
    assert write.outcome is WriteOutcome.WRITTEN
    assert write.api_calls == 0
    assert write.target_entity_id is not None
    assert write.target_entity_id.startswith(DRY_RUN_PREFIX)
    assert sorted(write.created_ids) == ["thread:0", "thread:1"]
    assert record.decision == "written_case_on_zendesk"
    assert "dry run" in record.reason
    # A second attempt of the same create finds the same record, as a real sink would.
    again, _, _ = await runner.run(create.model_copy(update={"attempt": 2}), share=(1, 1))
    assert again.target_entity_id == write.target_entity_id

    append = command(
        EntityType.MESSAGE, CommandAction.APPEND, message(CUSTOMER, "hi", 2), key="cmd-2"
    )
    appended, _, _ = await runner.run(append, share=(1, 1))
    assert CREATED_MESSAGE in appended.created_ids

    update = command(
        EntityType.CASE,
        CommandAction.UPDATE,
        case(status=CaseStatus.SOLVED),
        target="501",
        key="cmd-3",
        changed_fields=["status"],
    )
    updated, _, _ = await runner.run(update, share=(1, 1))
    assert [fp.split(":")[:3] for fp in updated.fingerprints] == [["zendesk", "501", "status"]]
    await runner.sink("zd").aclose()


async def test_without_the_dry_run_the_runner_calls_the_platform() -> None:
    """The same runner, mode off (the default): the call leaves and fails, nothing is
    made up."""
    assert Settings.model_fields["sink_dry_run"].default is False
    runner = SinkRunner(_settings(False), "zendesk", Metrics(CollectorRegistry()))
    write, _, letter = await runner.run(upsert([message(CUSTOMER, "hi", 0)]), share=(1, 1))
    assert write.outcome is WriteOutcome.FAILED
    assert letter is not None
    await runner.sink("zd").aclose()
