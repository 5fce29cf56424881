"""Salesforce change events decoded per second, over the Pub/Sub API and over CometD.

    .venv/bin/python -m bench.cdc_ingest [--changes 5000] [--max-in-flight 100]

The Salesforce sandbox runs in this process. ``--changes`` cases are created through REST
(sObject Collections, 200 a request) while nobody listens; then each subscriber resumes from
the position before them and the time from subscribing to the last decoded change is taken:
backlog consumption, every batch acked at once, as a caller that keeps up would. The figure
includes the sandbox's own work (rendering, Avro encoding, long-polls) on the same two cores,
so it is a lower bound. No design target names a CDC rate; the webhook ingest target of
5,000 events/s per worker is shown for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import httpx

from bench.figures import at_least, row
from connectors.salesforce.cdc_cometd import CometdSubscriber
from connectors.salesforce.cdc_items import DecodedChange
from connectors.salesforce.cdc_pubsub import PubSubSubscriber
from connectors.salesforce.cdc_replay import CometdReplay, PubSubReplay, ReplayPosition
from connectors.salesforce.cdc_stream import ChangeSubscriber
from connectors.salesforce.session import SalesforceSession
from sandboxes.base import SandboxContext, load_profile, run_sandboxes
from sandboxes.salesforce import SalesforceSandbox, SalesforceSandboxConfig

TARGET_PER_S = 5000.0
CHANNEL = "/data/CaseChangeEvent"
API = "/services/data/v59.0"


class Tokens:
    """One refresh-token grant against the sandbox, kept."""

    def __init__(self, url: str, config: SalesforceSandboxConfig) -> None:
        self._url = url
        self._config = config
        self._session: SalesforceSession | None = None

    async def session(self) -> SalesforceSession:
        if self._session is None:
            async with httpx.AsyncClient(base_url=self._url) as client:
                response = await client.post(
                    "/services/oauth2/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": self._config.refresh_token,
                        "client_id": self._config.consumer_key,
                        "client_secret": self._config.consumer_secret,
                    },
                )
            response.raise_for_status()
            body = response.json()
            org_id = str(body["id"]).rstrip("/").split("/")[-2]
            self._session = SalesforceSession(
                str(body["instance_url"]).rstrip("/"), str(body["access_token"]), org_id
            )
        return self._session

    async def invalidate(self, session: SalesforceSession) -> None:
        self._session = None


async def make_changes(url: str, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        for start in range(0, count, 200):
            records = [
                {"attributes": {"type": "Case"}, "Subject": f"bench {i}", "Priority": "Low"}
                for i in range(start, min(count, start + 200))
            ]
            response = await client.post(f"{API}/composite/sobjects", json={"records": records})
            response.raise_for_status()


async def consume(subscriber: ChangeSubscriber, start: ReplayPosition, count: int) -> float:
    """Seconds from subscribing to the ``count``-th decoded change."""
    began = time.perf_counter()
    seen = 0
    batches = subscriber.events(CHANNEL, start)
    async for batch in batches:
        seen += sum(isinstance(item, DecodedChange) for item in batch.items)
        batch.ack()
        if seen >= count:
            break
    elapsed = time.perf_counter() - began
    await batches.aclose()  # type: ignore[attr-defined]
    return elapsed


async def run(changes: int, max_in_flight: int) -> list[str]:
    config = SalesforceSandboxConfig(daily_api_limit=10_000_000)
    context = SandboxContext(rng=random.Random(1), faults=load_profile("none"), seed=1)
    sandbox = SalesforceSandbox(context=context, config=config)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("salesforce")
        tokens = Tokens(url, config)
        bus = sandbox.org.bus
        before = bus.latest_replay_id
        await make_changes(url, (await tokens.session()).access_token, changes)
        # The positions a caller would have stored just before the changes.
        pubsub_start = PubSubReplay(CHANNEL, before.to_bytes(8, "big"))
        cometd_start = CometdReplay(CHANNEL, before)
        async with sandbox.pubsub_channel() as channel:  # TLS, as in production
            pubsub = PubSubSubscriber(channel, tokens, max_in_flight=max_in_flight)
            pubsub_s = await consume(pubsub, pubsub_start, changes)
        cometd = CometdSubscriber(tokens, max_in_flight=max_in_flight)
        cometd_s = await consume(cometd, cometd_start, changes)
    rows = [row("measure", "figure", "target", "ratio")]
    for name, seconds in (
        ("Pub/Sub decoded changes/s", pubsub_s),
        ("CometD decoded changes/s", cometd_s),
    ):
        rate = changes / seconds
        rows.append(row(name, f"{rate:,.0f}", f"{TARGET_PER_S:,.0f}", at_least(rate, TARGET_PER_S)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=5000)
    parser.add_argument("--max-in-flight", type=int, default=100)
    args = parser.parse_args()
    for line in asyncio.run(run(args.changes, args.max_in_flight)):
        print(line)


if __name__ == "__main__":
    main()
