"""When the sandbox sends a long text update as a diff, per "Sending Data Differences for
Fields of Updated Records": at least 1,000 characters, a length change of at most 50%, at most
25% of the lines changed, and a diff shorter than the value; and every diff it sends rebuilds
the new value with the connector's reader."""

from __future__ import annotations

import pytest

from connectors.salesforce.cdc_events import apply_text_diff
from sandboxes.salesforce.cdc_diff import text_diff

LINES = [f"Paragraph {i}: the export to the data warehouse failed overnight." for i in range(40)]
OLD = "\n".join(LINES)


def edited(*, newline: str = "\n", **changes: str) -> str:
    lines = list(LINES)
    for index, text in changes.items():
        lines[int(index.removeprefix("line"))] = text
    return newline.join(lines)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (OLD, edited(line3="Paragraph 3: fixed.")),
        (OLD, "Preface.\n" + OLD),
        (OLD, OLD.rsplit("\n", 1)[0]),
        (OLD.replace("\n", "\r\n"), edited(newline="\r\n", line39="The end.")),
        (OLD, edited(line0="First.", line20="Middle.", line39="Last.")),
    ],
    ids=["one-line", "insert-at-start", "drop-last-line", "crlf", "three-hunks"],
)
def test_small_edits_of_long_text_are_diffs_that_rebuild_the_value(old: str, new: str) -> None:
    diff = text_diff(old, new)

    assert diff is not None
    assert diff.startswith("--- \n+++ ")
    assert len(diff) < len(new)
    assert apply_text_diff(old, diff) == new


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a" * 999, "b" * 999),
        (OLD[:900], OLD[:900] + " more"),
        (OLD, OLD + "\n" + OLD),
        (OLD, "\n".join(line.upper() for line in LINES)),
        (OLD, "\n".join(line.upper() if i % 3 == 0 else line for i, line in enumerate(LINES))),
        # One long line of ten changes: few lines, but the diff carries it twice.
        ("\n".join(["short"] * 9 + ["a" * 1000]), "\n".join(["short"] * 9 + ["b" * 1000])),
        (None, OLD),
        (OLD, None),
    ],
    ids=[
        "under-1000",
        "new-value-under-1000",
        "length-up-over-50-percent",
        "every-line-changed",
        "a-third-of-the-lines-changed",
        "diff-longer-than-the-value",
        "was-empty",
        "now-empty",
    ],
)
def test_other_updates_send_the_whole_value(old: str | None, new: str | None) -> None:
    assert text_diff(old, new) is None
