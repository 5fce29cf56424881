"""The derived ids are exactly the standard library's uuid5: changing one re-ids records."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas.ids import uuid5_hex, uuid5_text


@given(namespace=st.uuids(), name=st.text())
def test_the_ids_are_the_standard_librarys_uuid5(namespace: uuid.UUID, name: str) -> None:
    expected = uuid.uuid5(namespace, name)
    assert uuid5_text(namespace, name) == str(expected)
    assert uuid5_hex(namespace, name) == expected.hex
