"""``streams/`` knows a platform only through its adapter (``connectors.base.adapter``) and
the configuration: no platform's name appears in its code, comments or docstrings outside the
configuration modules."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.base.registry import adapter_platforms
from schemas.models import Platform

STREAMS = Path(__file__).parents[2] / "streams"
#: the configuration names platforms: it is where they are chosen
CONFIGURATION = {"config.py", "config_legacy.py"}
NAMES = [*sorted({*adapter_platforms(), *(p.value for p in Platform)} - {"generic"}), "sunshine"]
#: a platform's name, underscores left out (``zendesk_conversations`` as ``ZendeskConversations``)
PATTERN = re.compile("|".join(re.escape(n.replace("_", "")) for n in NAMES), re.IGNORECASE)


def test_streams_names_no_platform_outside_configuration() -> None:
    found = [
        f"{path.relative_to(STREAMS.parent)}:{number}: {line.strip()}"
        for path in sorted(STREAMS.rglob("*.py"))
        if path.name not in CONFIGURATION
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PATTERN.search(line.replace("_", ""))
    ]
    assert found == []


def test_the_check_would_see_a_platform_name() -> None:
    assert PATTERN.search("if side == 'Zendesk':".replace("_", ""))
    assert PATTERN.search("ZENDESK_CONVERSATIONS".replace("_", ""))
    assert not PATTERN.search("a linked record on another platform")
