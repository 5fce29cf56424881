"""A rehearsal of the Intercom ⇄ Zendesk sync on one machine: real Kafka, a worker process,
the Intercom and Zendesk sandboxes serving on loopback and sending signed webhooks to the
worker, and a small file server for attachments. With ``salesforce=<transport>`` the
Salesforce sandbox joins as a third member: the worker reads its Change Data Capture over
that transport, polls its CaseComments and reconciles, and follows the shipped three-way
rules (``config/intercom-zendesk-salesforce.example.yaml``).

People act through the platforms' public APIs (the sandbox actors); whoever drives the
rehearsal (the demo, the end-to-end tests, the benchmarks) reads the platforms' state back
through the same APIs. Credentials are generated for the run; nothing is read from or written
to a real account. The people and the worker sign in with different credentials, and the
sandboxes log every API request they answer by credential (never the credential itself), so a
rehearsal can tell the worker's own calls from the people's (``SyncStack.worker_requests``).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from aiohttp import web

from app.audit_cli import read_trail
from app.balancer import Balancer
from app.sandbox_env import connector_env
from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import RunningWorker, free_port, run_worker
from connectors.base.links import case_link_id
from connectors.salesforce.soql_text import id_literal, string_literal
from sandboxes.base import PlatformSandbox, load_profile, run_sandboxes
from sandboxes.base.faults import ADMIN_PREFIX, FaultProfile
from sandboxes.base.traffic import TrafficStats
from sandboxes.base.traffic.polite import PoliteTransport
from sandboxes.intercom import IntercomSandbox, IntercomSandboxConfig
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer, intercom_http
from sandboxes.salesforce import SalesforceSandbox
from sandboxes.salesforce.actors import SalesforceConsoleUser, salesforce_http
from sandboxes.zendesk import ZendeskSandbox, ZendeskSandboxConfig
from sandboxes.zendesk.actors import api_token_auth, zendesk_http
from schemas.errors import DeskstreamError
from schemas.models import AuditRecord

__all__ = [
    "SYNC_YAML",
    "THREE_WAY_YAML",
    "LoggedRequest",
    "RequestLog",
    "SyncStack",
    "Transport",
    "sync_stack",
]

T = TypeVar("T")

ZD_INTEGRATION = "deskstream@deskstream-sandbox.test"
ZD_AGENT = "admin@deskstream-sandbox.test"
HUMAN_ADMIN = "991267002"  # Ada Agent, a person; the token's own admin is Deskstream's bot

SYNC_YAML = """
version: 1
connectors: {intercom: intercom, zendesk: zendesk}
flows:
  escalate_to_zendesk: {enabled: true, when: {tags_any: [escalate]}}
  status_round_trip: {enabled: true, reopen: intercom_reopens_zendesk}
taxonomy:
  tags:
    billing: {intercom: billing-issue, zendesk: billing}
profile_fields: {name: both, plan: intercom_to_zendesk}
"""

#: the shipped Intercom → Zendesk ⇄ Salesforce rules; the rehearsal's connector ids are the
#: platforms' names, as the example's are
THREE_WAY_YAML = (
    Path(__file__).resolve().parents[1] / "config" / "intercom-zendesk-salesforce.example.yaml"
)

#: how the worker reads Salesforce Change Data Capture
Transport = Literal["pubsub", "cometd"]


@dataclass(frozen=True)
class LoggedRequest:
    """One API request a sandbox answered: when (``time.monotonic()``), who, what, status."""

    at: float
    platform: str
    caller: str  # "worker" (Deskstream's own credential), "people", or "unknown"
    method: str
    path: str
    status: int
    #: whether the request may change state (the sandbox's own ``is_write``: a search, a
    #: CometD long poll or a token exchange travelling as POST is not one)
    write: bool = False

    def __str__(self) -> str:
        return f"{self.platform} {self.method} {self.path} -> {self.status} ({self.caller})"


class RequestLog:
    """Every API request the rehearsal's sandboxes answer, injected faults included, labelled
    by the credential that made it. Only labels are kept: credentials never enter an entry."""

    def __init__(self, maxlen: int = 500_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._callers: dict[tuple[str, str], str] = {}
        self._resolvers: dict[str, Callable[[str], str | None]] = {}

    def know(self, platform: str, authorization: str, caller: str) -> None:
        """Requests to ``platform`` with this ``Authorization`` header are ``caller``'s."""
        self._callers[(platform, authorization)] = caller

    def know_by(self, platform: str, resolve: Callable[[str], str | None]) -> None:
        """Requests to ``platform`` are ``resolve(authorization)``'s: for platforms whose
        tokens are issued during the run (OAuth sessions), not known beforehand."""
        self._resolvers[platform] = resolve

    def _caller(self, platform: str, authorization: str) -> str:
        known = self._callers.get((platform, authorization))
        if known is None and platform in self._resolvers:
            known = self._resolvers[platform](authorization)
        return known or "unknown"

    def attach(
        self, platform: str, app: web.Application, is_write: Callable[[web.Request], bool]
    ) -> None:
        # on_response_prepare also sees the responses the fault middleware makes up (5xx,
        # 429), which no middleware inside it would: a refused call is still a call.
        async def record(request: web.Request, response: web.StreamResponse) -> None:
            if request.path.startswith(ADMIN_PREFIX):
                return
            self._entries.append(
                LoggedRequest(
                    time.monotonic(),
                    platform,
                    self._caller(platform, request.headers.get("Authorization", "")),
                    request.method,
                    request.path,
                    response.status,
                    is_write(request),
                )
            )

        app.on_response_prepare.append(record)

    def since(self, start: float, *, caller: str | None = None) -> list[LoggedRequest]:
        """Requests answered at or after ``start`` (``time.monotonic()``), oldest first."""
        return [
            e for e in self._entries if e.at >= start and (caller is None or e.caller == caller)
        ]


class _Logged(PlatformSandbox):
    """A sandbox whose answers go into the rehearsal's request log (placed before the
    platform's own class, so its ``setup`` wraps the platform's)."""

    request_log: RequestLog | None = None

    def setup(self, app: web.Application) -> None:
        super().setup(app)
        if self.request_log is not None:
            self.request_log.attach(self.platform, app, self.is_write)


class _LoggedIntercom(_Logged, IntercomSandbox):
    pass


class _LoggedZendesk(_Logged, ZendeskSandbox):
    pass


class _LoggedSalesforce(_Logged, SalesforceSandbox):
    def caller(self, authorization: str) -> str | None:
        """Whose OAuth session a bearer token is: the integration user's is the worker's.
        Read without touching the session (authenticating would extend its timeout)."""
        session = self.org.oauth.sessions.get(authorization.partition(" ")[2].strip())
        if session is None:
            return None
        return "worker" if session.user_id == self.org.user_id else "people"


@dataclass
class SyncStack:
    settings: Settings
    #: every worker of the run (one consumer group); ``worker`` is the first
    workers: list[RunningWorker]
    intercom: IntercomSandbox
    zendesk: ZendeskSandbox
    ic: httpx.AsyncClient  # Intercom API with the people's app token (they act with admin ids)
    zd_agent: httpx.AsyncClient  # Zendesk API as a human agent, never the integration user
    files_url: str
    files: dict[str, bytes]
    bot_admin_id: str
    requests: RequestLog
    #: the sync rules file the workers read (``DESKSTREAM_SYNC_CONFIG``)
    rules_path: Path
    human_admin_id: str = HUMAN_ADMIN
    #: the third member, with ``sync_stack(salesforce=...)``
    salesforce: SalesforceSandbox | None = None
    #: a person working cases in the Salesforce console (not the integration user)
    sf: SalesforceConsoleUser | None = None

    @property
    def worker(self) -> RunningWorker:
        return self.workers[0]

    def _crashed(self) -> RunningWorker | None:
        """A worker that exited without being stopped or killed on purpose."""
        for worker in self.workers:
            if worker.process.poll() is not None and not worker.stopped_on_purpose:
                return worker
        return None

    def link(self, conversation_id: str) -> str:
        return case_link_id("intercom", "intercom", conversation_id)

    def file_url(self, name: str, content: bytes) -> str:
        self.files[name] = content
        return f"{self.files_url}/{name}"

    async def ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        response = await self.zd_agent.get(
            "/api/v2/tickets", params={"external_id": self.link(conversation_id)}
        )
        tickets: list[dict[str, Any]] = response.json()["tickets"]
        assert len(tickets) <= 1, f"{len(tickets)} tickets mirror conversation {conversation_id}"
        return tickets[0] if tickets else None

    async def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        response = await self.zd_agent.get(f"/api/v2/tickets/{ticket_id}/comments")
        comments: list[dict[str, Any]] = response.json()["comments"]
        return comments

    def console(self) -> SalesforceConsoleUser:
        if self.sf is None:
            raise DeskstreamError(
                "this stack has no Salesforce sandbox; start it with sync_stack(salesforce=...)"
            )
        return self.sf

    async def case_for(self, link_id: str) -> dict[str, Any] | None:
        """The Salesforce Case holding ``link_id`` in its link field (one at most). The
        queries below quote their values with the connector's SOQL literals."""
        cases = await self.console().query(
            "SELECT Id, Subject, Status, Priority, Deskstream_Link_Id__c FROM Case "  # noqa: S608
            f"WHERE Deskstream_Link_Id__c = {string_literal(link_id)}"
        )
        assert len(cases) <= 1, f"{len(cases)} Cases hold link {link_id}"
        return cases[0] if cases else None

    async def escalated(self, email: str, body: str) -> tuple[str, int, str]:
        """A customer writes ``body`` in Intercom and a person tags it ``escalate``; once
        the worker made the ticket and (with Salesforce) the Case: (conversation, ticket id,
        Case id or "")."""
        customer = IntercomCustomer(self.ic, email=email, name="Noor Haddad")
        conversation = await customer.start_conversation(body)
        await IntercomAdmin(self.ic, admin_id=self.human_admin_id).tag(conversation, "escalate")
        ticket = await self.eventually(lambda: self.ticket_for(conversation), "the ticket")
        if self.sf is None:
            return conversation, int(ticket["id"]), ""
        link = self.link(conversation)
        case = await self.eventually(lambda: self.case_for(link), "the Case", within=120)
        return conversation, int(ticket["id"]), str(case["Id"])

    async def case_comments(self, case_id: str) -> list[dict[str, Any]]:
        """A Case's CaseComments, oldest first."""
        return await self.console().query(
            "SELECT Id, CommentBody, IsPublished, CreatedById, CreatedDate "  # noqa: S608
            "FROM CaseComment "
            f"WHERE ParentId = {id_literal(case_id)} ORDER BY CreatedDate"
        )

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = await self.ic.get(f"/conversations/{conversation_id}")
        conversation: dict[str, Any] = response.json()
        return conversation

    async def zendesk_users(self, email: str) -> list[dict[str, Any]]:
        response = await self.zd_agent.get(
            "/api/v2/users/search", params={"query": f"email:{email}"}
        )
        users: list[dict[str, Any]] = response.json()["users"]
        return users

    async def eventually(
        self,
        probe: Callable[[], Awaitable[T | None]],
        what: str,
        within: float = 90.0,
        *,
        every: float = 0.5,
    ) -> T:
        """Poll until ``probe`` returns something truthy; a clear failure otherwise. Probes
        that read many records can poll less often (``every``): people's reads share the
        Zendesk account's rate limit with the worker."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = await probe()
            if found:
                return found
            if (crashed := self._crashed()) is not None:
                # Nothing will change any more: say so now, not when the wait runs out.
                raise DeskstreamError(
                    f"a worker exited with status {crashed.process.returncode} while waiting "
                    f"for: {what}; its log ({crashed.log}) ends with:\n{crashed.log_tail()}"
                )
            await asyncio.sleep(every)
        raise DeskstreamError(
            f"not within {within:.0f} s: {what}; the worker log ({self.worker.log}) ends with:\n"
            f"{self.worker.log_tail()}"
        )

    async def audit(self, link_id: str) -> list[AuditRecord]:
        """The link's audit records, oldest first (decisions with their details)."""
        return await read_trail(self.settings, link_id, None)

    async def trail(self, link_id: str) -> str:
        """The link's audit trail, as `deskstream audit trace` prints it (for failure messages)."""
        records = await self.audit(link_id)
        return "\n".join(f"  {r.stage:8} {r.decision:28} {r.reason}" for r in records)

    async def settle(self, seconds: float = 4.0) -> None:
        """Give late webhooks, retries and echoes time to arrive before counting."""
        await asyncio.sleep(seconds)

    async def sandbox_state(self, platform: str) -> dict[str, Any]:
        """A sandbox's counters (``GET /_sandbox/state``): requests, injected faults, webhook
        deliveries and what the platform's delivery limits dropped."""
        client = self.ic if platform == "intercom" else self.zd_agent
        state: dict[str, Any] = (await client.get(f"{ADMIN_PREFIX}/state")).json()
        return state

    async def command(self, *args: str) -> asyncio.subprocess.Process:
        """``deskstream <args>`` as a child process with the worker's settings, its stderr
        (progress lines) piped: the caller reads, waits for or kills it."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            *args,
            env=self.worker.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def set_faults(self, platform: str, profile: FaultProfile) -> None:
        """Switch a sandbox's fault profile mid-run (``PUT /_sandbox/faults``), e.g. its
        webhooks off (``FaultProfile(webhooks_off=True)``)."""
        client = self.ic if platform == "intercom" else self.zd_agent
        body = profile.model_dump(mode="json")
        response = await client.put(f"{ADMIN_PREFIX}/faults", json=body)
        response.raise_for_status()

    async def webhooks_pending(self) -> int:
        """Webhook deliveries both sandboxes still hold: queued, in flight, or waiting for a
        retry or a (fault-injected) redelivery."""
        pending = 0
        for platform in ("intercom", "zendesk"):
            hooks = (await self.sandbox_state(platform))["webhooks"]
            pending += int(hooks["pending"]) if hooks else 0
        return pending

    def worker_requests(self, since: float) -> list[LoggedRequest]:
        """API requests made with the worker's own credentials, to any sandbox, answered
        at or after ``since`` (``time.monotonic()``)."""
        return self.requests.since(since, caller="worker")

    def worker_writes(self, since: float) -> list[LoggedRequest]:
        """The worker's requests since ``since`` that may change state: a worker with pull
        sources reads all the time, and only its writes can start a loop."""
        return [r for r in self.worker_requests(since) if r.write]

    async def quiet_window(self, seconds: float = 5.0) -> list[LoggedRequest]:
        """The requests the worker made with its own credentials during the next ``seconds``
        (the caller does not touch the platforms meanwhile)."""
        start = time.monotonic()
        await asyncio.sleep(seconds)
        return self.worker_requests(start)


def _polite(platform: str) -> httpx.AsyncBaseTransport:
    """People's clients retry 429s and 5xx like any well-behaved client (fault runs)."""
    return PoliteTransport(
        httpx.AsyncHTTPTransport(),
        platform=platform,
        stats=TrafficStats(),
        attempts=30,  # a person tries again and again; they do not give up on a 429 burst
        backoff_s=0.5,
    )


async def _serve_files(files: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/files"


@asynccontextmanager
async def sync_stack(
    bootstrap: str,
    folder: Path,
    *,
    faults: str | FaultProfile = "none",
    seed: int = 1,
    partitions: int = 4,
    name: str = "rehearsal",
    sync_yaml: str | None = None,
    workers: int = 1,
    replication: int = 1,
    extra_env: dict[str, str] | None = None,
    zendesk_config: dict[str, Any] | None = None,
    salesforce: Transport | None = None,
    salesforce_poll_seconds: float = 1.0,
) -> AsyncIterator[SyncStack]:
    """``name`` prefixes this run's app id and topics (``<name>-<run>.events``, ...);
    ``sync_yaml`` is the worker's sync rules file (``DESKSTREAM_SYNC_CONFIG``; ``SYNC_YAML``,
    or the three-way example with Salesforce). With several ``workers`` (one consumer
    group), webhooks go through a round-robin ``Balancer``; ``replication`` is the topics'
    replication factor (a three-broker cluster takes 3); ``extra_env`` adds worker settings,
    ``zendesk_config`` Zendesk sandbox settings (``ZendeskSandboxConfig`` fields, e.g. the
    incremental export's lag). ``salesforce`` adds the Salesforce sandbox and the worker's
    connector for it, reading CDC over that transport and polling CaseComments and
    reconciling every ``salesforce_poll_seconds``."""
    run = uuid.uuid4().hex[:8]
    ports = [free_port() for _ in range(workers)]
    front = free_port() if workers > 1 else ports[0]
    target = f"http://127.0.0.1:{front}/webhooks/{{platform}}"
    profile = load_profile(faults) if isinstance(faults, str) else faults
    # Fresh credentials for every rehearsal: the sandboxes accept exactly these, the worker
    # gets them through its environment, and nothing fixed lives in the code.
    # People use an app token of their own in Intercom (their admin ids say who acts), so
    # the worker's token is Deskstream's alone; in Zendesk each signs in as themselves.
    ic_token, people_token, ic_secret, zd_token, zd_secret = (
        secrets.token_urlsafe(24) for _ in range(5)
    )
    requests = RequestLog()
    intercom = _LoggedIntercom.create(
        seed=seed,
        faults=profile,
        webhook_target=target,
        webhook_concurrency=4,
        config=IntercomSandboxConfig(
            access_tokens=(ic_token, people_token),
            client_secret=ic_secret,
            custom_attributes={"contact": {"plan": "string"}, "conversation": {}},
        ),
    )
    zendesk = _LoggedZendesk.create(
        seed=seed,
        faults=profile,
        webhook_target=target,
        webhook_concurrency=4,
        config=ZendeskSandboxConfig(
            api_tokens=(zd_token,), webhook_secret=zd_secret, **(zendesk_config or {})
        ),
    )
    intercom.request_log = zendesk.request_log = requests
    sandboxes: list[PlatformSandbox] = [intercom, zendesk]
    crm: _LoggedSalesforce | None = None
    if salesforce is not None:
        # No webhooks: the worker pulls (CDC, polling), as it would from a real org.
        crm = _LoggedSalesforce.create(seed=seed, faults=profile)
        crm.request_log = requests
        requests.know_by("salesforce", crm.caller)
        sandboxes.append(crm)
    if sync_yaml is None:
        sync_yaml = SYNC_YAML if salesforce is None else THREE_WAY_YAML.read_text()
    requests.know("intercom", f"Bearer {ic_token}", "worker")
    requests.know("intercom", f"Bearer {people_token}", "people")
    requests.know("zendesk", api_token_auth(ZD_INTEGRATION, zd_token), "worker")
    requests.know("zendesk", api_token_auth(ZD_AGENT, zd_token), "people")
    files: dict[str, bytes] = {}
    file_runner, files_url = await _serve_files(files)
    try:
        async with run_sandboxes(sandboxes) as running, AsyncExitStack() as clients:
            ic_url, zd_url = running.url("intercom"), running.url("zendesk")
            console: SalesforceConsoleUser | None = None
            crm_env: dict[str, str] = {}
            if crm is not None and salesforce is not None:
                console = SalesforceConsoleUser(
                    await clients.enter_async_context(
                        salesforce_http(running.url("salesforce"), transport=_polite("salesforce"))
                    ),
                    consumer_key=crm.config.consumer_key,
                    consumer_secret=crm.config.consumer_secret,
                    refresh_token=crm.config.agent_refresh_token,
                )
                connector = crm.worker_connector(
                    transport=salesforce, poll_seconds=salesforce_poll_seconds
                )
                # The very variables `deskstream sandbox` prints for a first run.
                crm_env = {
                    v.name: v.value for v in connector_env("salesforce", connector).variables
                }
            async with (
                intercom_http(ic_url, people_token, transport=_polite("intercom")) as ic,
                intercom_http(ic_url, ic_token, transport=_polite("intercom")) as ic_worker,
                zendesk_http(
                    zd_url, api_token_auth(ZD_AGENT, zd_token), transport=_polite("zendesk")
                ) as zd_agent,
                zendesk_http(
                    zd_url, api_token_auth(ZD_INTEGRATION, zd_token), transport=_polite("zendesk")
                ) as zd_integration,
            ):
                bot_admin = str((await ic_worker.get("/me")).json()["id"])
                integration_user = str(
                    (await zd_integration.get("/api/v2/users/me")).json()["user"]["id"]
                )
                rules = folder / "sync.yaml"
                rules.write_text(sync_yaml)
                env = {
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "DESKSTREAM_APP_ID": f"{name}-{run}",
                    "DESKSTREAM_TOPIC_PREFIX": f"{name}-{run}",
                    "DESKSTREAM_PARTITIONS": str(partitions),
                    "DESKSTREAM_REPLICATION_FACTOR": str(replication),
                    "DESKSTREAM_SYNC_CONFIG": str(rules),
                    "DESKSTREAM_SINK_MAX_BACKOFF_SECONDS": "5",
                    "DESKSTREAM_CONNECTORS__intercom__PLATFORM": "intercom",
                    "DESKSTREAM_CONNECTORS__intercom__SECRET": ic_secret,
                    "DESKSTREAM_CONNECTORS__intercom__API_BASE_URL": ic_url,
                    "DESKSTREAM_CONNECTORS__intercom__API_TOKEN": ic_token,
                    "DESKSTREAM_CONNECTORS__intercom__SERVICE_ACCOUNT_ID": bot_admin,
                    "DESKSTREAM_CONNECTORS__zendesk__PLATFORM": "zendesk",
                    "DESKSTREAM_CONNECTORS__zendesk__SECRET": zd_secret,
                    "DESKSTREAM_CONNECTORS__zendesk__API_BASE_URL": zd_url,
                    "DESKSTREAM_CONNECTORS__zendesk__API_USER": ZD_INTEGRATION,
                    "DESKSTREAM_CONNECTORS__zendesk__API_TOKEN": zd_token,
                    "DESKSTREAM_CONNECTORS__zendesk__SERVICE_ACCOUNT_ID": integration_user,
                    **crm_env,
                    **(extra_env or {}),
                }
                settings = load_settings(
                    kafka_bootstrap_servers=bootstrap,
                    app_id=env["DESKSTREAM_APP_ID"],
                    topic_prefix=env["DESKSTREAM_TOPIC_PREFIX"],
                    partitions=partitions,
                    replication_factor=replication,
                )
                await ensure_topics(bootstrap, topic_specs(settings))
                balancer = Balancer(lambda: [w.url for w in running_workers if w.alive])
                if workers > 1:
                    await balancer.start(front)
                running_workers: list[RunningWorker] = []
                with ExitStack() as exits:
                    for i, port in enumerate(ports):
                        log = folder / ("worker.log" if workers == 1 else f"worker-{i}.log")
                        state = {"DESKSTREAM_STATE_DIR": str(folder / f"worker-{i}")}
                        # run_worker blocks while it waits for /ready: keep the sandboxes serving.
                        running_workers.append(
                            await asyncio.to_thread(
                                exits.enter_context,
                                run_worker({**env, **state}, port=port, log=log),
                            )
                        )
                    try:
                        yield SyncStack(
                            settings=settings,
                            workers=running_workers,
                            intercom=intercom,
                            zendesk=zendesk,
                            ic=ic,
                            zd_agent=zd_agent,
                            files_url=files_url,
                            files=files,
                            bot_admin_id=bot_admin,
                            requests=requests,
                            rules_path=rules,
                            salesforce=crm,
                            sf=console,
                        )
                    finally:
                        await asyncio.to_thread(exits.close)
                        await balancer.aclose()
    finally:
        await file_runner.cleanup()
