"""Deskstream's own Salesforce Pub/Sub API (``eventbus.v1``) proto and its generated modules.

``pubsub_api.proto`` is written from the API facts and is wire-compatible with Salesforce's
service; ``pubsub_api_pb2`` (messages) and ``pubsub_api_pb2_grpc`` (``PubSubStub``,
``PubSubServicer``) are generated from it by :mod:`connectors.salesforce.pubsub.generate`
and committed, with a test that regenerates them and fails when they are stale.
"""

from __future__ import annotations

__all__: list[str] = []
