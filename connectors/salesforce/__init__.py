"""Salesforce: Service Cloud cases, contacts and comments, with Change Data Capture.

The offline, faithful Salesforce (OAuth, REST, CDC over CometD and the Pub/Sub API) is
:mod:`sandboxes.salesforce`. ``pubsub`` holds the Pub/Sub API proto and its generated gRPC
modules; ``cdc_events`` reads change events the way a connector must (every id of
``recordIds``, diffs applied). ``settings``, ``session`` (the ``TokenSource`` interface),
``auth`` (JWT bearer and refresh token flows), ``client`` (REST), ``responses`` (the
classifier), ``limits`` (the daily allowance) and ``models`` are the API side. ``raw`` is
the body of a Salesforce delivery on the raw topic (a change event's record, or a polled
record); ``records`` spells records canonically both ways; ``normalize`` and ``sink`` are
the connector's two ends.
"""

from __future__ import annotations

__all__: list[str] = []
