"""Tests mirror the source tree: tests/app, tests/schemas, tests/streams, tests/connectors."""
