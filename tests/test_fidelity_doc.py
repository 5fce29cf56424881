"""The sandbox fidelity table (docs/sandbox-fidelity.md) names the test that pins each platform
behaviour; a test renamed or removed without its row would leave a claim nothing checks."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "sandbox-fidelity.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_test_the_fidelity_table_names_exists() -> None:
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) >= 40  # the table itself must not quietly shrink away
    missing = []
    for path, name in references:
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(?:async )?def {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert missing == [], f"docs/sandbox-fidelity.md names tests that do not exist: {missing}"
