"""One package per platform (client, ingest, normalize, sink, models): what a production worker
runs; the shared contract lives in ``connectors.base``. A platform never imports another
platform, and nothing here imports ``sandboxes`` (the offline platforms live beside, in the
top-level ``sandboxes`` package; ``tests/test_import_direction.py`` enforces it)."""
