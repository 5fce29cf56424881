"""The generic connector: in-house systems post canonical JSON events, signed with HMAC-SHA256.

It is the pass-through the pipeline is proven with before the platform normalisers arrive, and
it stays useful afterwards for systems Deskstream has no connector for (a billing system that
should update a contact's plan, an internal AI agent that hands a conversation over).

Signing, in the spirit of Stripe's scheme: ``X-Deskstream-Timestamp: <unix seconds>`` and
``X-Deskstream-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. An
optional ``X-Deskstream-Delivery`` header names the delivery; redeliveries repeat it.
"""
