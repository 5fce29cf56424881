"""The ``deskstream-avro`` Faust codec: our models in, Avro single-object bytes out, and back.

Topics declare ``value_serializer="deskstream-avro"`` once ``register_faust_codec()`` has run
(the app calls it at start-up). Faust's codec registry is a plain module-level dict, so
registering is idempotent: a second call finds our codec there and leaves it alone.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from schemas.codec import decode, encode
from schemas.errors import SchemaError
from schemas.models import AvroRecord

__all__ = ["CODEC_NAME", "DeskstreamAvroCodec", "register_faust_codec"]

CODEC_NAME = "deskstream-avro"


class DeskstreamAvroCodec(codecs.Codec):
    """Faust codec for the top-level canonical messages (Envelope, SyncCommand, ...)."""

    def _dumps(self, s: Any) -> bytes:
        if not isinstance(s, AvroRecord):
            # Faust would otherwise pass e.g. a dict on to the next codec in a chain.
            raise SchemaError(
                f"the {CODEC_NAME} codec writes Deskstream models only, got {type(s).__name__}"
            )
        return encode(s)

    def _loads(self, s: bytes) -> Any:
        return decode(s)


def register_faust_codec() -> None:
    """Make ``deskstream-avro`` available to Faust topics and ``codecs.dumps``/``loads``."""
    if not isinstance(codecs.codecs.get(CODEC_NAME), DeskstreamAvroCodec):
        codecs.register(CODEC_NAME, DeskstreamAvroCodec())
