"""An offline, faithful Salesforce org for the demo, the tests and rollout rehearsals.

``SalesforceSandbox`` (registered as ``sandboxes.salesforce:SalesforceSandbox``)
serves, on one HTTP port: the OAuth token endpoint (JWT bearer and refresh token flows), the
REST API (``/services/data/vXX.X``: sObjects Case, Contact, CaseComment, ContentVersion,
ContentDocument, ContentDocumentLink; upsert by external id; sObject Collections; describe;
limits) with ``Sforce-Limit-Info`` and the daily allowance, and Change Data Capture over
CometD (``/cometd/XX.X``). The Pub/Sub API (gRPC, ``eventbus.v1.PubSub``) listens on its own
port, :attr:`SalesforceSandbox.pubsub_target`. Configure it with
:class:`SalesforceSandboxConfig`.

Modules: ``state`` (org, config, API usage), ``store``/``fields``/``objects``/``ids`` (records
and rules), ``auth`` (OAuth, sessions), ``rest_common``/``routes_sobjects``/``routes_misc``
(REST), ``cdc``/``cdc_schema``/``cdc_diff`` (event bus, layouts, Avro, long text diffs),
``cometd``, ``pubsub``, ``server``. Which objects publish change events is ``catalog``'s
``CHANGE_EVENT_OBJECTS`` (CaseComment does not, as in a real org).
"""

from __future__ import annotations

from sandboxes.salesforce.cdc_schema import decode_bitmap
from sandboxes.salesforce.pubsub import decode_replay_id, encode_replay_id
from sandboxes.salesforce.server import SalesforceSandbox
from sandboxes.salesforce.state import SalesforceSandboxConfig

__all__ = [
    "SalesforceSandbox",
    "SalesforceSandboxConfig",
    "decode_bitmap",
    "decode_replay_id",
    "encode_replay_id",
]
