"""The offline, faithful platforms: one package per platform (``sandboxes.zendesk``,
``sandboxes.intercom``, ...), the shared base (server, faults, webhooks, clock, the traffic
generator) in ``sandboxes.base``. Rehearsals, demos, benchmarks and tests run against them.

Sandboxes may import ``connectors`` (shared constants such as link ids, redaction, the
Salesforce Pub/Sub stubs); ``connectors``, ``streams``, ``schemas`` and the worker never import
``sandboxes`` (``tests/test_import_direction.py``)."""
