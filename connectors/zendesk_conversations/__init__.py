"""Zendesk Conversations (Sunshine Conversations v2): the AI agent's messaging channel and its
hand-over to Zendesk's agent workspace through the switchboard."""
