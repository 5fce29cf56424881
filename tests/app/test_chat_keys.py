"""Chat client keys: several per client (rotation), read from a file that may change."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.chat_keys import ChatSettings, client_of
from schemas.errors import ConfigurationError


def test_every_key_of_a_client_is_accepted_and_others_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("widget:new-key\nwidget:old-key\n")
    settings = ChatSettings(keys=SecretStr("mobile:m-key"), keys_file=keys)
    assert client_of(settings, "Bearer new-key") == "widget"
    assert client_of(settings, "Bearer old-key") == "widget"
    assert client_of(settings, "bearer m-key") == "mobile"
    assert client_of(settings, "Bearer nope") is None
    assert client_of(settings, "Basic new-key") is None
    assert client_of(settings, None) is None
    assert client_of(settings, "Bearer clé") is None
    # The rotation ends: the old line is removed, without a restart.
    keys.write_text("widget:new-key\n")
    assert client_of(settings, "Bearer old-key") is None


def test_a_malformed_line_is_named_without_its_content(tmp_path: Path) -> None:
    settings = ChatSettings(keys=SecretStr("widget:ok,secret-without-client"))
    with pytest.raises(ConfigurationError, match="chat key 2 of DESKSTREAM_CHAT__KEYS") as caught:
        client_of(settings, "Bearer ok")
    assert "secret-without-client" not in str(caught.value)
