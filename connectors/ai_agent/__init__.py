"""The AI agent (or chat widget) in front of the platforms, as a connector of platform
``ai_agent``: one connector per API client, so each client has its own keys (``SECRET`` /
``SECRET_FILE``, several lines during a rotation) and its own connector id in every record.

It hands conversations to humans through ``POST /handoff`` (``app.handoff``): the body is a
``HandoffRequest``, authenticated with ``Authorization: Bearer <key>`` and
``X-Deskstream-Client: <connector id>``, stored as a RawDelivery like any webhook and turned
into one canonical Handoff event by ``AiAgentNormaliser``.
"""
