"""Zendesk Support: the connector's client, ingest, normalize and sink live here, and the
offline sandbox that emulates the platform lives in :mod:`connectors.zendesk.sandbox`."""
