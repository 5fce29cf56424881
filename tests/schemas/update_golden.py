"""Rewrite golden.json from the current examples and codec; run only for an intended change.

    .venv/bin/python -m tests.schemas.update_golden

A golden-byte failure means the bytes on the wire changed. If that was the point (a schema
change that passed the compatibility test), regenerate and commit golden.json with the schema
change, so the review shows both.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.codec import encode
from tests.schemas.examples import EXAMPLES

__all__ = ["GOLDEN_FILE", "main"]

GOLDEN_FILE = Path(__file__).with_name("golden.json")


def main() -> None:
    golden = {label: encode(example).hex() for label, example in EXAMPLES.items()}
    GOLDEN_FILE.write_text(json.dumps(golden, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(golden)} golden messages to {GOLDEN_FILE}")


if __name__ == "__main__":
    main()
