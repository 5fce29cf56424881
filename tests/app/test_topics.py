from __future__ import annotations

import pytest

from app.settings import Settings, load_settings
from app.topics import DAY_MS, by_logical, topic_specs


@pytest.fixture
def local() -> Settings:
    return load_settings(kafka_bootstrap_servers=None, kafka_brokers=1)


def test_every_topic_of_the_design_exists_with_explicit_partitions(local: Settings) -> None:
    names = [s.name for s in topic_specs(local)]
    assert names == [
        "deskstream.raw",
        "deskstream.quarantine",
        "deskstream.events",
        "deskstream.sync",
        "deskstream.entities",
        "deskstream.commands.zendesk",
        "deskstream.commands.zendesk_conversations",
        "deskstream.commands.intercom",
        "deskstream.commands.salesforce",
        "deskstream.commands.ai_agent",
        "deskstream.writes",
        "deskstream.timers",
        "deskstream.dlq",
        "deskstream.audit",
        "deskstream.chat",
        "deskstream.sources",
        "deskstream-links-changelog",
        "deskstream-recent_events-changelog",
        "deskstream-chat_sessions-changelog",
    ]
    assert {s.partitions for s in topic_specs(local)} == {local.partitions}


def test_retention_follows_the_design(local: Settings) -> None:
    specs = by_logical(topic_specs(local))
    assert specs["raw"].configs["retention.ms"] == str(7 * DAY_MS)
    assert specs["quarantine"].configs["retention.ms"] == str(30 * DAY_MS)
    assert specs["dlq"].configs["retention.ms"] == str(30 * DAY_MS)
    assert specs["events"].configs["retention.ms"] == "-1"
    assert specs["audit"].configs["retention.ms"] == "-1"
    # source positions: the newest per source name is all a lease holder reads
    assert specs["sources"].configs["cleanup.policy"] == "compact"
    assert specs["entities"].configs["cleanup.policy"] == "compact"
    assert "retention.ms" not in specs["entities"].configs


@pytest.mark.parametrize(
    ("overrides", "replication", "min_isr"),
    [
        pytest.param({"kafka_brokers": 1}, 1, "1", id="local-1"),
        pytest.param({"kafka_brokers": 3}, 3, "2", id="local-3"),
        pytest.param({"kafka_bootstrap_servers": "k:9092"}, 3, "2", id="external"),
        pytest.param(
            {"kafka_bootstrap_servers": "k:9092", "replication_factor": 2}, 2, "1", id="set"
        ),
    ],
)
def test_replication_and_min_insync(
    overrides: dict[str, object], replication: int, min_isr: str
) -> None:
    settings = load_settings(**{"kafka_bootstrap_servers": None, **overrides})
    for spec in topic_specs(settings):
        assert spec.replication == replication
        assert spec.configs["min.insync.replicas"] == min_isr


def test_prefix_versions_every_topic() -> None:
    settings = load_settings(topic_prefix="acme.deskstream.v2", app_id="acme")
    names = [s.name for s in topic_specs(settings)]
    assert all(n.startswith("acme.deskstream.v2.") for n in names if "changelog" not in n)
    assert "acme-links-changelog" in names  # table changelogs follow the app id


def test_table_changelogs_are_compacted_and_co_partitioned(local: Settings) -> None:
    changelogs = [s for s in topic_specs(local) if s.name.endswith("-changelog")]
    # links (fed by sync and writes), recent_events (by raw), chat_sessions (by chat)
    assert len(changelogs) == 3
    specs = by_logical(topic_specs(local))
    for changelog in changelogs:
        assert changelog.configs["cleanup.policy"] == "compact"
        assert changelog.partitions == specs["sync"].partitions == specs["raw"].partitions
