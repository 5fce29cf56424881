"""The connector's change event reader, without a sandbox: every id of a merged event, diffs
written by hand in the documented format ("--- \\n+++ <SHA-256>\\n" then zero-context hunks),
and a re-read, never a guess, when a diff does not fit."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from connectors.salesforce.cdc_events import (
    DiffNotApplicable,
    RereadRecord,
    apply_text_diff,
    expand,
    from_pubsub,
    resolve,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def header(change_type: str = "UPDATE", **fields: Any) -> dict[str, Any]:
    return {
        "entityName": "Case",
        "recordIds": ["500A", "500B", "500C"],
        "changeType": change_type,
        "changeOrigin": "com/salesforce/api/rest/59.0",
        "transactionKey": "k",
        "sequenceNumber": 1,
        "commitTimestamp": 1,
        "commitNumber": 1,
        "commitUser": "005A",
        "changedFields": ["Status", "LastModifiedDate"],
        **fields,
    }


PRIOR = "alpha\nbravo\ncharlie\ndelta"


def test_a_merged_event_expands_to_every_record_id() -> None:
    payload = {"ChangeEventHeader": header(), "Status": "Closed", "LastModifiedDate": "t"}

    changes = expand(payload)

    assert [c.record_id for c in changes] == ["500A", "500B", "500C"]
    assert all(c.fields == {"Status": "Closed", "LastModifiedDate": "t"} for c in changes)
    assert all(resolve(c, {}) == {"Status": "Closed", "LastModifiedDate": "t"} for c in changes)


def test_compound_nulled_and_missing_fields() -> None:
    payload = {
        "ChangeEventHeader": header(
            changedFields=["Name.FirstName", "Email", "Title", "LastModifiedDate"]
        ),
        "Name": {"FirstName": "Augusta"},
        "Email": None,
        "LastModifiedDate": "t",
    }

    change = expand(payload)[0]

    assert change.fields == {"Name.FirstName": "Augusta", "Email": None, "LastModifiedDate": "t"}
    # Changed, but the event does not say to what: only the record can.
    assert change.unknown == {"Title"}
    with pytest.raises(RereadRecord) as reread:
        resolve(change, {})
    assert reread.value.fields == ("Title",)


@pytest.mark.parametrize(
    ("diff_body", "expected"),
    [
        ("@@ -2,1 +2,1 @@\n-bravo\n+BRAVO", "alpha\nBRAVO\ncharlie\ndelta"),
        (
            "@@ -1,1 +1,1 @@\n-alpha\n+ALPHA\n@@ -4,1 +4,2 @@\n-delta\n+d1\n+d2",
            "ALPHA\nbravo\ncharlie\nd1\nd2",
        ),
        ("@@ -0,0 +1,1 @@\n+zero", "zero\nalpha\nbravo\ncharlie\ndelta"),
        ("@@ -3,1 +2,0 @@\n-charlie", "alpha\nbravo\ndelta"),
        ("@@ -2 +2 @@\n-bravo\n+b", "alpha\nb\ncharlie\ndelta"),
    ],
    ids=["replace-one-line", "two-hunks", "insert-at-start", "delete-a-line", "counts-omitted"],
)
def test_documented_diffs_apply(diff_body: str, expected: str) -> None:
    diff = f"--- \n+++ {sha(expected)}\n{diff_body}"

    assert apply_text_diff(PRIOR, diff) == expected


def test_windows_line_breaks_are_kept_for_the_hash() -> None:
    prior = PRIOR.replace("\n", "\r\n")
    expected = "alpha\r\nBRAVO\r\ncharlie\r\ndelta"

    rebuilt = apply_text_diff(prior, f"--- \n+++ {sha(expected)}\n@@ -2,1 +2,1 @@\n-bravo\n+BRAVO")

    assert rebuilt == expected


@pytest.mark.parametrize(
    "diff",
    [
        f"--- \n+++ {sha('x')}\n@@ -2,1 +2,1 @@\n-bravo\n+BRAVO",
        f"--- \n+++ {sha('alpha')}\n@@ -2,1 +2,1 @@\n-not bravo\n+BRAVO",
        f"+++ {sha('alpha')}\n@@ -2,1 +2,1 @@\n-bravo\n+BRAVO",
        f"--- \n+++ {sha('alpha')}\n@@ -9,1 +9,1 @@\n-nine\n+NINE",
        f"--- \n+++ {sha('alpha')}\n@@ -3,1 +3,1 @@\n-charlie\n@@ -1,1 +1,1 @@\n-alpha",
        f"--- \n+++ {sha('alpha')}\nbravo",
    ],
    ids=[
        "hash-differs",
        "line-differs",
        "no-header",
        "beyond-the-end",
        "hunks-out-of-order",
        "no-hunk-header",
    ],
)
def test_diffs_that_do_not_fit_are_refused(diff: str) -> None:
    with pytest.raises(DiffNotApplicable):
        apply_text_diff(PRIOR, diff)


def test_a_diff_that_does_not_fit_means_reread_the_record() -> None:
    expected = "alpha\nBRAVO\ncharlie\ndelta"
    diff = f"--- \n+++ {sha(expected)}\n@@ -2,1 +2,1 @@\n-bravo\n+BRAVO"
    payload = {
        "ChangeEventHeader": header(changedFields=["Description", "LastModifiedDate"]),
        "Description": {"diff": diff},
        "LastModifiedDate": "t",
    }
    [change, *_] = expand(payload)

    assert change.diffs == {"Description": diff}
    assert resolve(change, {"Description": PRIOR})["Description"] == expected
    for prior in ({}, {"Description": None}, {"Description": "someone else's edit"}):
        with pytest.raises(RereadRecord) as reread:
            resolve(change, prior)
        assert (reread.value.record_id, reread.value.fields) == ("500A", ("Description",))


def test_gap_events_mean_reread() -> None:
    [change] = expand({"ChangeEventHeader": header("GAP_UPDATE", recordIds=["500A"])})

    with pytest.raises(RereadRecord):
        resolve(change, {})


SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ContactChangeEvent",
    "fields": [
        {"name": "ChangeEventHeader", "type": "string"},
        {
            "name": "Name",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Switchable_PersonName",
                    "fields": [{"name": "FirstName"}, {"name": "LastName"}],
                },
            ],
        },
        {"name": "Email", "type": ["null", "string"]},
        {"name": "Description", "type": ["null", "string"]},
        {"name": "Title", "type": ["null", "string"]},
    ],
}


def test_pubsub_records_read_like_cometd_ones() -> None:
    # Bits: 3 = Description, 2 = Email (positions in SCHEMA); "1-0x01" = Name.FirstName.
    record = {
        "ChangeEventHeader": header(
            changedFields=["0x0C", "1-0x01"], nulledFields=["0x04"], diffFields=["0x08"]
        ),
        "Name": {"FirstName": "Augusta", "LastName": None},
        "Email": None,
        "Description": "--- \n+++ abc\n@@ -1,1 +1,1 @@\n-a\n+b",
        "Title": None,
    }

    payload = from_pubsub(record, SCHEMA)
    [change, *_] = expand(payload)

    assert payload["ChangeEventHeader"]["changedFields"] == [
        "Email",
        "Description",
        "Name.FirstName",
    ]
    assert change.fields == {"Name.FirstName": "Augusta", "Email": None}
    assert change.diffs == {"Description": record["Description"]}
    assert not change.unknown


def test_pubsub_creates_keep_only_populated_fields() -> None:
    record = {
        "ChangeEventHeader": header("CREATE", changedFields=[], recordIds=["003A"]),
        "Name": {"FirstName": None, "LastName": "Lovelace"},
        "Email": "ada@example.com",
        "Description": None,
        "Title": None,
    }

    [change] = expand(from_pubsub(record, SCHEMA))

    assert change.fields == {"Name.LastName": "Lovelace", "Email": "ada@example.com"}
