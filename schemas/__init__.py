"""The canonical Avro schemas (``*.avsc``, the single source of truth) and their codec.

    deskstream.<Name>.avsc   one file per named type; fastavro's load_schema and Java's
                             Schema.Parser resolve cross-file references by full name
    released/v<N>/           frozen snapshot of each released version (compatibility baseline)
    models.py                pydantic models mirroring the records (checked against the .avsc)
    registry.py              schemas parsed once, by name and CRC-64-AVRO fingerprint
    codec.py                 Avro single-object encoding: encode, decode, decode_as
    _convert.py              compiled model <-> fastavro datum converters
    faust_codec.py           the "deskstream-avro" Faust codec
    compat.py                structural full-compatibility checker (Avro resolution rules)

Changing a schema: edit the current .avsc and the model together, keep the change fully
compatible (new fields need defaults; enums keep their symbols), run tests/schemas, and
regenerate the golden bytes with ``python -m tests.schemas.update_golden``. Cutting a release
copies the current .avsc files into a new ``released/v<N+1>/``.
"""
