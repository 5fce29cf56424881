"""One package per platform (client, ingest, normalize, sink, sandbox, models); the shared
contract lives in ``connectors.base``. A platform never imports another platform."""
