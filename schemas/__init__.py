"""The canonical Avro schemas (``*.avsc``, the single source of truth) and their codec."""
