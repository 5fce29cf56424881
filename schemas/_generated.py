"""What the generated Avro writers and readers share: Python source written once per schema.

``schemas._compiled_writer`` and ``schemas._compiled_reader`` each turn a parsed schema into
the source of one function per named record (a record refers to another by calling its
function), with the values the source cannot spell (models, enum tables, builders) passed in
as named constants, then compile it once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.models import AvroRecord

__all__ = ["SourceGenerator", "Unsupported"]


class Unsupported(Exception):
    """The schema uses something the generator does not handle: fastavro does it."""


class SourceGenerator:
    """The source of one schema's functions: one per named record, and their constants."""

    #: what the generated functions' names start with
    prefix = "_f_"

    def __init__(self, parsed: Any, models: dict[str, type[AvroRecord]]) -> None:
        self.named: dict[str, Any] = parsed["__named_schemas"]
        self.models = models
        self.functions: dict[str, list[str]] = {}
        self.constants: dict[str, Any] = {}
        self._temp = 0

    def constant(self, value: Any, prefix: str) -> str:
        name = f"_{prefix}{len(self.constants)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        self._temp += 1
        return f"v{self._temp}"

    def resolve(self, schema: Any) -> Any:
        return self.named[schema] if isinstance(schema, str) and schema in self.named else schema

    def record_function(self, schema: Any) -> str:
        """The name of the function for the record ``schema``, generated on first use."""
        name: str = self.prefix + schema["name"].replace(".", "_")
        if name not in self.functions:
            self.functions[name] = []  # placeholder first: a recursive schema refers to it
            self.functions[name] = self.record_lines(name, schema)
        return name

    def record_lines(self, name: str, schema: Any) -> list[str]:
        """The source lines of the function ``name`` for the record ``schema``."""
        raise NotImplementedError

    def compile(self, parsed: Any, helpers: Mapping[str, Any], what: str) -> Callable[..., Any]:
        """The function for the top-level record ``parsed``, compiled with every other one
        it calls; ``helpers`` are the names the source uses besides its constants."""
        top = self.record_function(parsed)
        source = "\n\n".join("\n".join(lines) for lines in self.functions.values())
        namespace: dict[str, Any] = {**helpers, **self.constants}
        exec(compile(source, f"<avro {what} {parsed['name']}>", "exec"), namespace)  # noqa: S102
        function: Callable[..., Any] = namespace[top]
        return function
