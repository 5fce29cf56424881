"""Salesforce record ids: 15 case-sensitive characters plus a 3-character checksum suffix.

An id is ``<key prefix (3)><pod (2)><reserved "0"><9 base-62 characters>``; the 18-character
form appends one character per 5-character chunk that encodes which letters of that chunk are
upper case (bit i set for an upper-case letter at position i, the 5 bits indexing
``A..Z0..5``), so case-insensitive systems can still tell ids apart. The API accepts either
form and always answers with 18 characters.

Sources: the SOAP API guide's "Field Types" (ID field type),
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm , says ids
are 15-character case-sensitive or 18-character case-safe and that the API returns the
18-character form; the sObject result pages (e.g. "UpsertResult",
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_upsert_upsertresult.htm)
refer to it. UNVERIFIED: the suffix algorithm and the id layout (prefix, pod, reserved
character) are not spelled out on any official page found (queries: "Salesforce 18
character id checksum case-insensitive", "Salesforce ID field type 18-character
case-insensitive"); the algorithm is the one every public converter uses, pinned by
``tests/sandboxes/salesforce/test_rest.py::test_to_18_matches_the_documented_example``.
The key prefixes are the fixed, well-known ones. The product depends only on: ids are
compared as 18 characters, and a 15-character id finds the same record.
"""

from __future__ import annotations

import random
import string

__all__ = ["KEY_PREFIXES", "IdFactory", "key_prefix", "normalize_id", "to_18"]

#: Key prefixes of the objects the sandbox knows (the real, fixed values).
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Organization": "00D",
    "Group": "00G",
    "CaseComment": "00a",
    "Case": "500",
    "ContentVersion": "068",
    "ContentDocument": "069",
    "ContentDocumentLink": "06A",
}

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_ID_CHARS = frozenset(_BASE62)


def to_18(id15: str) -> str:
    """The 18-character form of a 15-character id."""
    if len(id15) != 15:
        raise ValueError(f"expected a 15-character id, got {len(id15)} characters")
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, char in enumerate(chunk) if char.isupper())
        suffix += _SUFFIX_ALPHABET[bits]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """The 18-character id for ``value``, or None if it is not an id.

    A 15-character id is case-sensitive. An 18-character id is not: its suffix says which
    letters are upper case, so ``500ABC...`` typed in lower case still finds the record.
    """
    if len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        return None
    if len(value) == 15:
        return to_18(value)
    restored = ""
    for chunk_index, suffix_char in enumerate(value[15:].upper()):
        bits = _SUFFIX_ALPHABET.find(suffix_char)
        if bits < 0:
            return None
        chunk = value[chunk_index * 5 : chunk_index * 5 + 5]
        restored += "".join(c.upper() if bits >> i & 1 else c.lower() for i, c in enumerate(chunk))
    full = to_18(restored)
    return full if full[15:] == value[15:].upper() else None


def key_prefix(record_id: str) -> str:
    return record_id[:3]


class IdFactory:
    """Mints unique, realistic ids; the sequence is reproducible from the seeded ``rng``."""

    def __init__(self, rng: random.Random, *, pod: str = "5g") -> None:
        self._pod = pod
        # Start each prefix somewhere random so ids do not all look like ...000001.
        self._rng = rng
        self._next: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        counter = self._next.get(prefix)
        if counter is None:
            counter = self._rng.randrange(62**6, 62**7)
        self._next[prefix] = counter + self._rng.randint(1, 97)
        body = ""
        for _ in range(9):
            counter, digit = divmod(counter, 62)
            body = _BASE62[digit] + body
        return to_18(f"{prefix}{self._pod}0{body}")

    def for_object(self, sobject: str) -> str:
        return self.new(KEY_PREFIXES[sobject])
