"""Salesforce: Service Cloud cases, contacts and comments, with Change Data Capture.

``sandbox`` is the offline, faithful Salesforce (OAuth, REST, CDC over CometD and the Pub/Sub
API); ``pubsub`` holds the Pub/Sub API proto and its generated gRPC modules; ``cdc_events``
reads change events the way a connector must (every id of ``recordIds``, diffs applied).
"""

from __future__ import annotations

__all__: list[str] = []
