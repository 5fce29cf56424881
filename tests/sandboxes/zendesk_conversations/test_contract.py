"""Sandbox responses and webhook payloads validated against the official OpenAPI document.

Responses go through openapi-core (operation lookup by method and path, status, schema).
Error statuses an operation does not document (401s, most 400s) and webhook events, which
the spec describes under ``x-webhooks``, are checked against the spec's own component
schemas with the OpenAPI 3.0 read validator (``writeOnly`` fields must not appear).
The spec's self-validation is switched off: the official file has a ``required: true``
inside a property schema that strict spec validators reject.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30ReadValidator

from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver

_SERVER = "https://api.smooch.io"

_EVENT_SCHEMAS = {
    "conversation:create": "conversationCreateEvent",
    "conversation:message": "conversationMessageEvent",
    "switchboard:passControl": "switchboardPassControl",
    "switchboard:offerControl": "switchboardOfferControl",
    "switchboard:acceptControl": "switchboardAcceptControl",
    "switchboard:releaseControl": "switchboardReleaseControl",
    "switchboard:passControl:failure": "switchboardPassControlFailure",
    "switchboard:offerControl:failure": "switchboardOfferControlFailure",
    "switchboard:acceptControl:failure": "switchboardAcceptControlFailure",
}


@pytest.fixture(scope="module")
def openapi(spec_dict: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(spec_dict, config=Config(spec_validator_cls=None))


def _component_validator(spec: dict[str, Any], name: str) -> OAS30ReadValidator:
    return OAS30ReadValidator(
        {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    )


def assert_documented(openapi: OpenAPI, response: httpx.Response) -> None:
    """``response`` is what the spec says its operation answers with that status."""
    request = response.request
    mock_request = MockRequest(
        _SERVER,
        request.method,
        request.url.path,
        args=dict(request.url.params),
        data=request.content or None,
    )
    mock_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("Content-Type", "").split(";")[0],
    )
    openapi.validate_response(mock_request, mock_response)


def assert_error_body(spec: dict[str, Any], response: httpx.Response) -> None:
    errors = list(_component_validator(spec, "errorResponse").iter_errors(response.json()))
    assert errors == [], errors
    assert response.json()["errors"], "an error body names at least one error"


async def _scenario(harness: Harness) -> tuple[str, str]:
    user_id = await harness.create_user("crm-1", profile={"givenName": "Ada"})
    conversation_id = await harness.create_conversation(user_id, metadata={"lang": "en"})
    return user_id, conversation_id


async def test_user_operations_match_the_spec(sunshine: Harness, openapi: OpenAPI) -> None:
    api = sunshine.api
    created = await api.post(
        "/users",
        json={
            "externalId": "crm-1",
            "profile": {"givenName": "Ada", "email": "ada@example.org", "locale": "en-US"},
            "metadata": {"plan": "pro", "seats": 2},
        },
    )
    responses = [
        created,
        await api.post("/users", json={"externalId": "crm-1"}),  # 409
        await api.get("/users/crm-1"),
        await api.get("/users/nobody"),  # 404
        await api.patch("/users/crm-1", json={"profile": {"surname": "Lovelace"}}),
        await api.patch("/users/nobody", json={}),  # 404
    ]
    assert [r.status_code for r in responses] == [201, 409, 200, 404, 200, 404]
    for response in responses:
        assert_documented(openapi, response)


async def test_conversation_operations_match_the_spec(sunshine: Harness, openapi: OpenAPI) -> None:
    user_id, conversation_id = await _scenario(sunshine)
    api = sunshine.api
    for _ in range(3):
        await sunshine.create_conversation(user_id)
    responses = [
        await api.post(
            "/conversations",
            json={"type": "personal", "participants": [{"userExternalId": "crm-1"}]},
        ),
        await api.get(f"/conversations/{conversation_id}"),
        await api.get("/conversations/0123456789abcdef01234567"),  # 404
        await api.patch(f"/conversations/{conversation_id}", json={"displayName": "Refund"}),
        await api.get("/conversations", params={"filter[userId]": user_id, "page[size]": "2"}),
        await api.get("/conversations", params={"filter[userExternalId]": "ghost"}),  # 404
        await api.get(
            "/conversations", params={"filter[userId]": user_id, "page[size]": "0"}
        ),  # 400
    ]
    assert [r.status_code for r in responses] == [201, 200, 404, 200, 200, 404, 400]
    for response in responses:
        assert_documented(openapi, response)


async def test_message_operations_match_the_spec(sunshine: Harness, openapi: OpenAPI) -> None:
    _, conversation_id = await _scenario(sunshine)
    path = f"/conversations/{conversation_id}/messages"
    bodies: list[dict[str, Any]] = [
        {
            "author": {"type": "business", "displayName": "AI", "subtypes": ["AI"]},
            "content": {"type": "text", "text": "Hello"},
            "metadata": {"k": "v"},
        },
        {
            "author": {"type": "user", "userExternalId": "crm-1"},
            "content": {"type": "text", "text": "Hi"},
        },
        {
            "author": {"type": "business"},
            "content": {"type": "file", "mediaUrl": "https://x.example.org/a.pdf", "text": "FAQ"},
        },
        {
            "author": {"type": "business"},
            "content": {"type": "image", "mediaUrl": "https://x.example.org/a.png"},
        },
    ]
    for body in bodies:
        posted = await sunshine.api.post(path, json=body)
        assert posted.status_code == 201
        assert_documented(openapi, posted)
    await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl", json={"switchboardIntegration": "next"}
    )
    await sunshine.admin.post(
        f"/_sandbox/agent/conversations/{conversation_id}/reply", json={"text": "Agent here"}
    )
    listed = await sunshine.api.get(path)
    assert len(listed.json()["messages"]) == 5
    assert_documented(openapi, listed)
    paged = await sunshine.api.get(
        path, params={"page[before]": listed.json()["messages"][2]["id"]}
    )
    assert_documented(openapi, paged)
    missing = await sunshine.api.get("/conversations/0123456789abcdef01234567/messages")
    assert missing.status_code == 404
    assert_documented(openapi, missing)


async def test_switchboard_operations_match_the_spec(sunshine: Harness, openapi: OpenAPI) -> None:
    _, conversation_id = await _scenario(sunshine)
    api, cfg = sunshine.api, sunshine.config
    board = f"/switchboards/{cfg.switchboard_id}"
    action = f"/conversations/{conversation_id}"
    responses = [
        await api.get("/switchboards"),
        await api.patch(board, json={"enabled": True}),
        await api.patch("/switchboards/0123456789abcdef01234567", json={}),  # 404
        await api.get(f"{board}/switchboardIntegrations"),
        await api.post(
            f"{board}/switchboardIntegrations", json={"name": "bot2", "integrationType": "t"}
        ),
        await api.patch(
            f"{board}/switchboardIntegrations/{cfg.ai_switchboard_integration_id}",
            json={"messageHistoryCount": 5},
        ),
        await api.post(
            f"{action}/passControl", json={"switchboardIntegration": "next", "metadata": {"a": 1}}
        ),
        await api.post(f"{action}/passControl", json={"switchboardIntegration": "nobody"}),  # 404
        await api.post(f"{action}/offerControl", json={"switchboardIntegration": "ai-agent"}),
        await api.post(f"{action}/acceptControl", json={}),
        await api.post(f"{action}/releaseControl", json={"metadata": {"b": True}}),
        await api.post("/conversations/0123456789abcdef01234567/releaseControl"),  # 404
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 404, 200, 201, 200, 200, 404, 200, 200, 200, 404]
    for response in responses:
        assert_documented(openapi, response)


async def test_undocumented_error_statuses_use_the_error_schema(
    sunshine: Harness, spec_dict: dict[str, Any]
) -> None:
    _, conversation_id = await _scenario(sunshine)
    action = f"/conversations/{conversation_id}/passControl"
    responses = [
        await sunshine.api.post(
            action, json={"switchboardIntegration": "next", "metadata": {"x": "y" * 5000}}
        ),
        await sunshine.api.post(action, json={}),
        await sunshine.api.post("/users", json={"externalId": ""}),
        await sunshine.admin.get(f"/v2/apps/{sunshine.config.app_id}/users/crm-1"),  # 401
    ]
    assert [r.status_code for r in responses] == [400, 400, 400, 401]
    for response in responses:
        assert_error_body(spec_dict, response)


async def test_webhook_payloads_match_the_spec(
    hooked: Harness, receiver: WebhookReceiver, spec_dict: dict[str, Any]
) -> None:
    _, conversation_id = await _scenario(hooked)
    api = hooked.api
    action = f"/conversations/{conversation_id}"
    agent = f"/_sandbox/agent/conversations/{conversation_id}"
    await hooked.admin.post(
        f"/_sandbox/enduser/conversations/{conversation_id}/messages", json={"text": "hi"}
    )
    await hooked.post_text(conversation_id, "Hello", subtypes=["AI"])
    await api.post(f"{action}/offerControl", json={"switchboardIntegration": "next"})
    await api.post(f"{action}/acceptControl", json={"metadata": {"m": 1}})
    await hooked.admin.post(
        f"{agent}/reply", json={"type": "file", "mediaUrl": "https://x.example.org/f.pdf"}
    )
    await hooked.admin.post(f"{agent}/pass", json={"metadata": {"m": 2}})
    await api.post(f"{action}/passControl", json={"switchboardIntegration": "zd-agentWorkspace"})
    await hooked.admin.post(f"{agent}/release", json={"metadata": {"m": 3}})
    # Failed actions: each announces its switchboard:*:failure event.
    await api.post(f"{action}/passControl", json={"switchboardIntegration": "nobody"})
    await api.post(f"{action}/offerControl", json={"switchboardIntegration": "nobody"})
    await api.post(f"{action}/acceptControl", json={"metadata": {"m": 4}})
    await hooked.drain()

    envelope_schema = spec_dict["x-webhooks"]["Webhook Event"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    envelope = OAS30ReadValidator({**envelope_schema, "components": spec_dict["components"]})
    seen = set()
    for delivery in receiver.received:
        body = delivery.json
        assert list(envelope.iter_errors(body)) == []
        for event in delivery.events:
            seen.add(event["type"])
            validator = _component_validator(spec_dict, _EVENT_SCHEMAS[event["type"]])
            problems = [e.message for e in validator.iter_errors(event)]
            assert problems == [], (event["type"], problems)
    assert seen == set(_EVENT_SCHEMAS)
    # Held events share payloads, as the platform's do.
    assert len(receiver.received) < len(receiver.events())
