"""The Zendesk reconciliation as a Source, against the Zendesk sandbox: a pass re-reads the
tickets and then the users modified in its window, each as a reconciliation naming no field
(the sync stage compares every field), and a version already sent is not sent again."""

from __future__ import annotations

from connectors.base.settings import SourceSettings
from connectors.base.source import RECONCILE_EVENT_TYPE, SOURCE_HEADER
from connectors.zendesk.normalize import ZendeskNormaliser
from connectors.zendesk.reconcile import ZendeskReconcile
from schemas.models import Contact, EntityType, Op
from tests.connectors.sources import polled, read
from tests.sandboxes.zendesk.conftest import ZendeskEnv


async def test_a_pass_re_reads_tickets_then_users_as_reconciliations(zendesk: ZendeskEnv) -> None:
    source = ZendeskReconcile(
        connector_id="zd",
        settings=zendesk.connector_settings(),
        source=SourceSettings(poll_seconds=0.01, window_seconds=600),
        clock=lambda: zendesk.clock.now().timestamp(),
    )
    normaliser = ZendeskNormaliser(connector_id="zd", settings=zendesk.connector_settings())
    try:
        zendesk.clock.advance(120)
        ticket = await zendesk.create_ticket(subject="Lost parcel")
        created = await zendesk.http.post(
            "/api/v2/users", json={"user": {"name": "Ana Silva", "email": "ana@example.com"}}
        )
        user_id = str(created.json()["user"]["id"])
        zendesk.clock.advance(5)
        # renamed while no webhook reached us: the reconciliation's read is the net
        await zendesk.http.put(f"/api/v2/users/{user_id}", json={"user": {"name": "Ana Costa"}})
        zendesk.clock.advance(61)  # past the exports' held-back minute
        first = await read(source, None)
        assert first[-1].position["phase"] == "users"
        assert [b.caught_up for b in first] == [False] * (len(first) - 1) + [True]
        records = polled(first)
        headers = {r.headers[SOURCE_HEADER] for r in records}
        assert headers == {"zendesk.reconcile", "zendesk.reconcile_users"}
        events = [e for r in records for e in normaliser.normalise(r)]
        assert any(e.source.entity_id == str(ticket["id"]) for e in events)
        [user] = [e for e in events if e.source.entity_id == user_id]
        assert user.source.entity_type is EntityType.CONTACT
        assert (user.source.event_type, user.op, user.changed_fields) == (
            RECONCILE_EVENT_TYPE,
            Op.UPDATE,
            [],
        )
        assert isinstance(user.data, Contact)
        assert user.data.name == "Ana Costa"
        # The next pass: the same versions are not sent again.
        zendesk.clock.advance(5)
        assert polled(await read(source, first[-1].position)) == []
        # `deskstream reconcile --since`: one pass of both from a time
        since = int(zendesk.clock.now().timestamp()) - 300
        again = await read(source, {"since": since})
        assert {r.headers[SOURCE_HEADER] for r in polled(again)} == headers
    finally:
        await source.aclose()
