"""The live chat endpoints know the AI clients of POST /handoff, with the same keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from app.chat_clients import client_of
from connectors.base.settings import ConnectorSettings


def test_an_ai_client_is_known_by_any_of_its_keys_and_nothing_else(tmp_path: Path) -> None:
    keys = tmp_path / "widget.keys"
    keys.write_text("new-key\nold-key\n")
    connectors = {
        "widget": ConnectorSettings(platform="ai_agent", secret_file=keys),
        "mobile": ConnectorSettings(platform="ai_agent", secret=SecretStr("m-key")),
        "desk": ConnectorSettings(platform="zendesk", secret=SecretStr("m-key")),
    }

    def who(client: str, key: str) -> str | None:
        return client_of(
            connectors, {"X-Deskstream-Client": client, "Authorization": f"Bearer {key}"}
        )

    assert who("widget", "new-key") == "widget"
    assert who("widget", "old-key") == "widget"  # during a rotation
    assert who("mobile", "m-key") == "mobile"
    assert who("widget", "m-key") is None  # another client's key
    assert who("desk", "m-key") is None  # not an AI client
    assert who("nobody", "new-key") is None
    assert client_of(connectors, {"Authorization": "Bearer new-key"}) is None
    assert client_of(connectors, {"X-Deskstream-Client": "widget"}) is None
    keys.write_text("new-key\n")  # the rotation ends, without a restart
    assert who("widget", "old-key") is None
