"""Zendesk Support: the connector's client, ingest, normalize and sink live here; the offline
sandbox that emulates the platform is :mod:`sandboxes.zendesk`.

Modules
    ``client``     :class:`~connectors.zendesk.client.ZendeskClient`: auth, the one response
                   classifier, rate-limit headers, typed calls (tickets, imports, users,
                   identities, uploads, ticket fields).
    ``ingest``     :class:`~connectors.zendesk.ingest.ZendeskIngest`: webhook signatures,
                   delivery ids, partition keys.
    ``normalize``  :class:`~connectors.zendesk.normalize.ZendeskNormaliser`: event-subscription
                   webhooks → canonical events (the table of event types is there).
    ``sink``       :class:`~connectors.zendesk.sink.ZendeskSink`: sync commands → API calls
                   (the table of calls per command is there).
    ``models``     response and webhook models, and the canonical ⇄ Zendesk vocabulary.
"""
