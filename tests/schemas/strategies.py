"""Hypothesis strategies built from the models' own annotations.

``hypothesis.strategies.builds`` leaves every field that has a default at its default, which
would never exercise optional fields or union branches; this walks the annotations instead, so a
field added to a model is generated (and round-tripped) without touching this file.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hypothesis import strategies as st
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo

from schemas.models import AvroRecord, EntityType, Envelope, Handoff

__all__ = ["CUSTOM_VALUES", "for_annotation", "for_model"]

# Avro timestamp-micros holds far more than datetime does; stay inside datetime's range with
# a margin so UTC normalisation never overflows.
_TIMESTAMPS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
# Text without surrogates (Avro strings are UTF-8) but with everything else, non-ASCII included.
_TEXT = st.text(max_size=20)


def _bounds(metadata: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in metadata:
        for constraint in item.metadata if isinstance(item, FieldInfo) else [item]:
            for key in ("ge", "le"):
                if hasattr(constraint, key):
                    found[key] = getattr(constraint, key)
    return found


def for_annotation(annotation: Any) -> st.SearchStrategy[Any]:
    """A strategy for any annotation the models use."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        if args[0] is int:
            bounds = _bounds(list(args[1:]))
            return st.integers(min_value=bounds["ge"], max_value=bounds["le"])
        return for_annotation(args[0])
    if origin in (types.UnionType, typing.Union):
        return st.one_of([for_annotation(a) for a in args])
    if origin is list:
        return st.lists(for_annotation(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(_TEXT, for_annotation(args[1]), max_size=3)
    if annotation is AwareDatetime:
        return _TIMESTAMPS
    if isinstance(annotation, type) and issubclass(annotation, AvroRecord):
        return for_model(annotation)
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return st.sampled_from(list(annotation))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        # NaN is a valid Avro double but never equal to itself, so it cannot round-trip by ==.
        float: st.floats(allow_nan=False),
        str: _TEXT,
        bytes: st.binary(max_size=64),
    }
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"no strategy for {annotation!r}")


def for_model(model: type[AvroRecord]) -> st.SearchStrategy[Any]:
    """Fully random instances of ``model``: every field drawn, optional ones included."""
    hints = typing.get_type_hints(model, include_extras=True)
    # Deferred: records refer to each other, and a strategy is only built when drawn from.
    fields = {name: st.deferred(_later(hints[name])) for name in model.model_fields}
    return st.fixed_dictionaries(fields).map(lambda kwargs: model(**_consistent(model, kwargs)))


def _consistent(model: type[AvroRecord], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with what the model requires of its fields together (``Envelope``: a
    Handoff is the data of a ``handoff`` event, and of no other)."""
    data, source = kwargs.get("data"), kwargs.get("source")
    if model is Envelope and data is not None and source is not None:
        handoff = isinstance(data, Handoff)
        if handoff != (source.entity_type is EntityType.HANDOFF):
            entity_type = EntityType.HANDOFF if handoff else EntityType.CASE
            kwargs["source"] = source.model_copy(update={"entity_type": entity_type})
    return kwargs


def _later(annotation: Any) -> Callable[[], st.SearchStrategy[Any]]:
    return lambda: for_annotation(annotation)


#: every kind of value a custom attribute holds: one of each branch of its union, a long of
#: every varint size, negative ones included
CUSTOM_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
