"""The AI client's keys and the hand-off body's validation, without Kafka (the worker path is
in tests/app/test_handoff_e2e.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr, ValidationError

from connectors.ai_agent.ingest import AiAgentIngest
from connectors.ai_agent.models import HandoffRequest
from connectors.base.ingest import WebhookRequest
from schemas.errors import SignatureError

KEYS = (SecretStr("new-key"), SecretStr("old-key"))


def request(authorization: str | None, body: object) -> WebhookRequest:
    headers = {"authorization": authorization} if authorization is not None else {}
    return WebhookRequest(
        connector_id="widget",
        headers=headers,
        body=json.dumps(body).encode(),
        received_at=datetime.now(UTC),
    )


@pytest.fixture
def ingest() -> AiAgentIngest:
    return AiAgentIngest(connector_id="widget", secret=None)


def test_every_current_key_is_accepted_and_nothing_else(ingest: AiAgentIngest) -> None:
    body = {"conversation_id": "c-1"}
    ingest.verify(request("Bearer new-key", body), KEYS)
    ingest.verify(request("bearer old-key", body), KEYS)  # the scheme is case-insensitive
    for wrong in ("Bearer guess", "Bearer new-key2", "Bearer clé-ünïcode", "new-key", None):
        with pytest.raises(SignatureError) as refused:
            ingest.verify(request(wrong, body), KEYS)
        assert "new-key" not in str(refused.value)
        assert "old-key" not in str(refused.value)


def test_the_conversation_id_keys_the_delivery(ingest: AiAgentIngest) -> None:
    given = request("Bearer new-key", {"conversation_id": "c-1"})
    assert ingest.delivery_id(given) == "handoff:c-1"
    assert ingest.partition_key(given) == "widget:handoff:c-1"
    unparsed = request("Bearer new-key", ["not", "an", "object"])
    assert ingest.delivery_id(unparsed).startswith("sha256:")
    assert ingest.partition_key(unparsed) == "widget:handoff:unparsed"


def test_each_problem_names_its_field() -> None:
    with pytest.raises(ValidationError) as invalid:
        HandoffRequest.model_validate(
            {
                "conversation_id": "has space",
                "customer": {"name": "Ana"},
                "reason": "",
                "target": "fax",
                "extra": 1,
            }
        )
    where = {".".join(str(p) for p in e["loc"]) for e in invalid.value.errors()}
    assert where == {"conversation_id", "customer", "reason", "target", "extra"}
    ok = HandoffRequest.model_validate(
        {"conversation_id": "c-1", "customer": {"external_id": "u-7"}, "reason": "asked"}
    )
    assert ok.target is None
