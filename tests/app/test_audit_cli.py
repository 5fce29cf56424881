from __future__ import annotations

import re

import pytest

from app.audit_cli import resolve_reference
from app.settings import Settings, load_settings
from connectors.base.links import case_link_id, contact_link_id
from schemas.errors import ConfigurationError


@pytest.fixture
def settings() -> Settings:
    return load_settings(connectors={"ic": {"platform": "intercom"}, "zd": {"platform": "zendesk"}})


def test_an_intercom_conversation_names_its_link(settings: Settings) -> None:
    assert resolve_reference(settings, "intercom:conversation:215", None) == (
        case_link_id("intercom", "ic", "215"),
        None,
    )


def test_a_zendesk_ticket_is_found_through_the_writes_that_made_it(settings: Settings) -> None:
    assert resolve_reference(settings, "zendesk:ticket:5158", None) == (None, "5158")


def test_contacts_by_email_and_links_by_id(settings: Settings) -> None:
    link = contact_link_id("Maria@Example.com", platform="x", connector_id="y", entity_id="z")
    assert resolve_reference(settings, "contact:maria@example.com", None) == (link, None)
    assert resolve_reference(settings, link, None) == (link, None)


@pytest.mark.parametrize("reference", ["intercom:215", "intercom:user:1", "nonsense"])
def test_unreadable_references_explain_the_forms(settings: Settings, reference: str) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape("<platform>:<conversation|ticket|case>:<id>")
    ):
        resolve_reference(settings, reference, None)
