"""Contract tests: every sandbox answer is validated against the official Intercom 2.14
OpenAPI document with openapi-core (requests too, so the calls here are real API calls).

The spec is read from ``DESKSTREAM_SPECS_DIR`` (default ``../shared/specs``); the tests skip
when it is absent. The official document does not pass openapi-core's strict spec check (one
unresolved path parameter elsewhere in it), so only that check is switched off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.sandbox_accounts import CONTACT_ATTRIBUTES, account_options
from sandboxes.base import ManualClock, run_sandboxes
from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv, make_sandbox

openapi_core = pytest.importorskip("openapi_core")
from openapi_core import Config, OpenAPI  # noqa: E402
from openapi_core.testing import MockRequest, MockResponse  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[3]
SPEC = "intercom-openapi-2.14.yaml"
SERVER = "https://api.intercom.io"


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    specs = Path(os.environ.get("DESKSTREAM_SPECS_DIR", REPO_ROOT.parent / "shared" / "specs"))
    path = specs / SPEC
    if not path.is_file():
        pytest.skip(f"official spec not found at {path} (set DESKSTREAM_SPECS_DIR)")
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))


#: Calls whose *request* cannot pass the spec although it is the documented call: the spec
#: declares ``from.id`` of create-conversation as ``format: uuid`` while its own example (and
#: every real contact id) is a 24-character hex id. Their responses are still validated.
REQUEST_SPEC_DEFECTS = {"create-conversation", "contact-not-found-on-create"}


def validate(openapi: OpenAPI, response: httpx.Response, *, check_request: bool = True) -> None:
    request = response.request
    mock_request = MockRequest(
        SERVER,
        request.method.lower(),
        request.url.path,
        args=dict(request.url.params),
        headers=dict(request.headers),
        data=request.content or None,
    )
    if check_request:
        openapi.validate_request(mock_request)
    mock_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("Content-Type", "").split(";")[0],
    )
    openapi.validate_response(mock_request, mock_response)


@dataclass
class World:
    contact: dict[str, Any]
    conversation_id: str
    tag: dict[str, Any]
    admin_id: str


async def build_world(env: IntercomEnv) -> World:
    http = env.http
    contact = (
        await http.post(
            "/contacts", json={"email": "ada@example.com", "external_id": "ext-1", "name": "Ada"}
        )
    ).json()
    message = (
        await http.post(
            "/conversations", json={"from": {"type": "user", "id": contact["id"]}, "body": "Hi"}
        )
    ).json()
    tag = (await http.post("/tags", json={"name": "vip"})).json()
    admins = (await http.get("/admins")).json()["admins"]
    return World(contact, message["conversation_id"], tag, admins[1]["id"])


Call = Callable[[World], tuple[str, str, dict[str, Any] | None]]

CALLS: list[tuple[str, int, Call]] = [
    ("me", 200, lambda w: ("GET", "/me", None)),
    ("list-admins", 200, lambda w: ("GET", "/admins", None)),
    ("show-admin", 200, lambda w: ("GET", f"/admins/{w.admin_id}", None)),
    ("list-tags", 200, lambda w: ("GET", "/tags", None)),
    ("data-attributes", 200, lambda w: ("GET", "/data_attributes?model=contact", None)),
    ("create-contact", 200, lambda w: ("POST", "/contacts", {"email": "bo@example.com"})),
    ("show-contact", 200, lambda w: ("GET", f"/contacts/{w.contact['id']}", None)),
    (
        "update-contact",
        200,
        lambda w: ("PUT", f"/contacts/{w.contact['id']}", {"name": "Ada Lovelace"}),
    ),
    ("find-by-external-id", 200, lambda w: ("GET", "/contacts/find_by_external_id/ext-1", None)),
    (
        "search-contacts",
        200,
        lambda w: (
            "POST",
            "/contacts/search",
            {
                "query": {"field": "email", "operator": "=", "value": "ada@example.com"},
                "pagination": {"per_page": 5},
            },
        ),
    ),
    (
        "tag-contact",
        200,
        lambda w: ("POST", f"/contacts/{w.contact['id']}/tags", {"id": w.tag["id"]}),
    ),
    ("list-contacts", 200, lambda w: ("GET", "/contacts", None)),
    (
        "create-conversation",
        200,
        lambda w: (
            "POST",
            "/conversations",
            {"from": {"type": "user", "id": w.contact["id"]}, "body": "Yo"},
        ),
    ),
    ("show-conversation", 200, lambda w: ("GET", f"/conversations/{w.conversation_id}", None)),
    (
        "admin-reply",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/reply",
            {"message_type": "comment", "type": "admin", "admin_id": w.admin_id, "body": "Hello"},
        ),
    ),
    (
        "admin-note",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/reply",
            {"message_type": "note", "type": "admin", "admin_id": w.admin_id, "body": "psst"},
        ),
    ),
    (
        "user-reply-with-attachment",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/reply",
            {
                "message_type": "comment",
                "type": "user",
                "intercom_user_id": w.contact["id"],
                "body": "see file",
                "attachment_urls": ["https://files.example.com/log.txt"],
            },
        ),
    ),
    (
        "close",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/parts",
            {"message_type": "close", "type": "admin", "admin_id": w.admin_id, "body": "Done"},
        ),
    ),
    (
        "assign",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/parts",
            {
                "message_type": "assignment",
                "type": "admin",
                "admin_id": w.admin_id,
                "assignee_id": w.admin_id,
            },
        ),
    ),
    (
        "snooze",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/parts",
            {"message_type": "snoozed", "admin_id": w.admin_id, "snoozed_until": 1900000000},
        ),
    ),
    (
        "tag-conversation",
        200,
        lambda w: (
            "POST",
            f"/conversations/{w.conversation_id}/tags",
            {"id": w.tag["id"], "admin_id": w.admin_id},
        ),
    ),
    (
        "update-conversation",
        200,
        lambda w: (
            "PUT",
            f"/conversations/{w.conversation_id}",
            {"read": True, "title": "Billing"},
        ),
    ),
    (
        "search-conversations",
        200,
        lambda w: (
            "POST",
            "/conversations/search",
            {"query": {"field": "updated_at", "operator": ">", "value": 0}},
        ),
    ),
    ("list-conversations", 200, lambda w: ("GET", "/conversations?per_page=5", None)),
    ("conversation-not-found", 404, lambda w: ("GET", "/conversations/999", None)),
    (
        "contact-not-found-on-create",
        404,
        lambda w: (
            "POST",
            "/conversations",
            {"from": {"type": "user", "id": "0" * 24}, "body": "Hello there"},
        ),
    ),
]


@pytest.mark.parametrize(("name", "expected", "call"), CALLS, ids=[c[0] for c in CALLS])
async def test_response_matches_official_spec(
    openapi: OpenAPI, intercom: IntercomEnv, name: str, expected: int, call: Call
) -> None:
    world = await build_world(intercom)
    method, path, body = call(world)
    response = await intercom.http.request(method, path, json=body)
    assert response.status_code == expected, response.text
    validate(openapi, response, check_request=name not in REQUEST_SPEC_DEFECTS)


async def test_untag_conversation_matches_spec(openapi: OpenAPI, intercom: IntercomEnv) -> None:
    world = await build_world(intercom)
    base = f"/conversations/{world.conversation_id}/tags"
    await intercom.http.post(base, json={"id": world.tag["id"], "admin_id": world.admin_id})
    response = await intercom.http.request(
        "DELETE", f"{base}/{world.tag['id']}", json={"admin_id": world.admin_id}
    )
    assert response.status_code == 200
    validate(openapi, response)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401)],
    ids=["missing-token", "wrong-token"],
)
async def test_unauthorized_matches_spec(
    openapi: OpenAPI, intercom: IntercomEnv, headers: dict[str, str], expected: int
) -> None:
    async with httpx.AsyncClient(base_url=intercom.url, headers=headers) as anonymous:
        response = await anonymous.get("/admins")
    assert response.status_code == expected
    body = response.json()
    assert body["type"] == "error.list"
    assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    # The request lacks the spec's bearerAuth on purpose, so only the answer is checked.
    validate(openapi, response, check_request=False)


def schema_validator(openapi: OpenAPI, name: str) -> Any:
    from openapi_core.validation.schemas import oas30_read_schema_validators_factory

    schema = openapi.spec / "components" / "schemas" / name
    return oas30_read_schema_validators_factory.create(openapi.spec, schema)


async def test_webhook_items_match_the_spec_models(openapi: OpenAPI, intercom: IntercomEnv) -> None:
    """The ``data.item`` of contact and conversation notifications are the API's models."""
    world = await build_world(intercom)
    await intercom.http.post(
        f"/conversations/{world.conversation_id}/reply",
        json={"message_type": "comment", "type": "admin", "admin_id": world.admin_id, "body": "x"},
    )
    await intercom.http.put(f"/contacts/{world.contact['id']}", json={"name": "Renamed"})
    await intercom.drain()
    items = {}
    for delivery in intercom.receiver.deliveries:
        notification = json.loads(delivery.body)
        items[notification["topic"]] = notification["data"]["item"]
    models = {
        "contact.user.created": "contact",
        "contact.user.updated": "contact",
        "conversation.user.created": "conversation",
        "conversation.admin.replied": "conversation",
    }
    assert set(models) <= set(items)
    for topic, model in models.items():
        schema_validator(openapi, model).validate(items[topic])


async def test_the_first_run_accounts_attributes_match_the_spec(openapi: OpenAPI) -> None:
    """``deskstream sandbox`` seeds the contact attributes the example rules read."""
    attributes = account_options("intercom")["config"].custom_attributes
    sandbox = make_sandbox(clock=ManualClock(), webhook_url=None, custom_attributes=attributes)
    async with run_sandboxes([sandbox]) as running:
        headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
        async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as http:
            response = await http.get("/data_attributes", params={"model": "contact"})
    validate(openapi, response)
    custom = {a["name"]: a for a in response.json()["data"] if a["custom"]}
    assert {name: a["data_type"] for name, a in custom.items()} == CONTACT_ATTRIBUTES
    assert {a["full_name"] for a in custom.values()} == {
        f"custom_attributes.{name}" for name in CONTACT_ATTRIBUTES
    }
