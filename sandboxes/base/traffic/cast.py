"""Who takes part in a run, and where they sign in.

:class:`Targets` says where each platform is and which credential each kind of person uses;
its defaults are the ports and credentials ``deskstream sandbox`` serves with. :class:`Cast`
builds one polite client per credential, the shared staff (Intercom's human admins, the
Zendesk agent, the AI agent, the agent-workspace agents, the Salesforce console user) and,
on demand, one actor per customer, so a customer who comes back is the same contact.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from sandboxes.base.registry import DEFAULT_PORT_OFFSETS
from sandboxes.base.traffic.ledger import TrafficStats
from sandboxes.base.traffic.model import Customer
from sandboxes.base.traffic.polite import PoliteTransport
from sandboxes.intercom import IntercomSandboxConfig
from sandboxes.intercom.actors import (
    IntercomAdmin,
    IntercomCustomer,
    find_human_admins,
    intercom_http,
)
from sandboxes.salesforce import SalesforceSandboxConfig
from sandboxes.salesforce.actors import SalesforceConsoleUser, salesforce_http
from sandboxes.zendesk import ZendeskSandboxConfig
from sandboxes.zendesk.actors import (
    ZendeskAgent,
    ZendeskRequester,
    api_token_auth,
    zendesk_http,
)
from sandboxes.zendesk_conversations import SunshineSandboxConfig
from sandboxes.zendesk_conversations.actors import (
    SunshineAIAgent,
    SunshineEndUser,
    SunshineHumanAgent,
    sunshine_http,
    widget_http,
)

__all__ = ["PLATFORMS", "Cast", "Targets", "TransportFactory", "sandbox_url"]

PLATFORMS: tuple[str, ...] = ("intercom", "zendesk", "zendesk_conversations", "salesforce")
TransportFactory = Callable[[], httpx.AsyncBaseTransport]

_INTERCOM, _ZENDESK = IntercomSandboxConfig(), ZendeskSandboxConfig()
_SUNSHINE, _SALESFORCE = SunshineSandboxConfig(), SalesforceSandboxConfig()
_URL_FIELDS = {
    "intercom": "intercom_url",
    "zendesk": "zendesk_url",
    "zendesk_conversations": "sunshine_url",
    "salesforce": "salesforce_url",
}
# Agents in Zendesk's agent workspace (Sunshine shows them by name and Zendesk user id).
_WORKSPACE_AGENTS = (("900000000011", "Grace Hopper"), ("900000000012", "Alan Kay"))


def sandbox_url(platform: str, *, host: str = "127.0.0.1", port_base: int = 8100) -> str:
    """Where ``deskstream sandbox --port-base port_base`` serves ``platform``."""
    return f"http://{host}:{port_base + DEFAULT_PORT_OFFSETS[platform]}"


@dataclass(frozen=True, kw_only=True)
class Targets:
    """Base URLs and credentials; defaults match ``deskstream sandbox`` with its defaults.

    ``zendesk_agent_auth`` is the human agent's own ``Authorization`` (default: the account
    admin's email with the account API token); ``zendesk_form_auth`` is the web form
    backend's. Neither should be the integration user's, or the sync takes the writes for its
    own. ``intercom_connector_id`` is the sync's Intercom connector id: escalations are found
    in Zendesk by the link id derived from it.
    """

    intercom_url: str = sandbox_url("intercom")
    intercom_token: str = _INTERCOM.access_tokens[0]
    intercom_connector_id: str = "intercom"
    zendesk_url: str = sandbox_url("zendesk")
    zendesk_agent_auth: str = api_token_auth(_ZENDESK.admin_email, _ZENDESK.api_tokens[0])
    zendesk_form_auth: str = api_token_auth(_ZENDESK.admin_email, _ZENDESK.api_tokens[0])
    sunshine_url: str = sandbox_url("zendesk_conversations")
    sunshine_app_id: str = _SUNSHINE.app_id
    sunshine_key_id: str = _SUNSHINE.key_id
    sunshine_key_secret: str = _SUNSHINE.key_secret
    salesforce_url: str = sandbox_url("salesforce")
    salesforce_consumer_key: str = _SALESFORCE.consumer_key
    salesforce_refresh_token: str = _SALESFORCE.refresh_token
    #: The refresh token flow needs the secret (the connected app's default setting).
    salesforce_consumer_secret: str | None = _SALESFORCE.consumer_secret
    salesforce_api_version: str = _SALESFORCE.api_version

    def with_urls(self, urls: Mapping[str, str]) -> Targets:
        """A copy with the given base URLs (by platform name; others are ignored)."""
        return dataclasses.replace(
            self, **{_URL_FIELDS[name]: url for name, url in urls.items() if name in _URL_FIELDS}
        )


def _default_transport() -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=32))


class Cast:
    """``async with Cast(targets, platforms, stats) as cast:`` signs the staff in."""

    def __init__(
        self,
        targets: Targets,
        platforms: Collection[str],
        stats: TrafficStats,
        *,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.targets = targets
        self.platforms = frozenset(platforms)
        self._stats = stats
        self._transport = transport_factory or _default_transport
        self._clients: list[httpx.AsyncClient] = []
        self.intercom_admins: list[IntercomAdmin] = []
        self.zendesk_form: httpx.AsyncClient | None = None
        self.zendesk_agent: ZendeskAgent | None = None
        self.ai_agent: SunshineAIAgent | None = None
        self.workspace_agents: list[SunshineHumanAgent] = []
        self.console_user: SalesforceConsoleUser | None = None
        self._intercom: httpx.AsyncClient | None = None
        self._sunshine: tuple[httpx.AsyncClient, httpx.AsyncClient] | None = None
        self._customers: dict[str, IntercomCustomer] = {}
        self._end_users: dict[str, SunshineEndUser] = {}
        self._contacts: dict[str, str] = {}
        self._profiles: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _client(
        self, platform: str, build: Callable[[httpx.AsyncBaseTransport], httpx.AsyncClient]
    ) -> httpx.AsyncClient:
        polite = PoliteTransport(self._transport(), platform=platform, stats=self._stats)
        client = build(polite)
        self._clients.append(client)
        return client

    async def __aenter__(self) -> Self:
        t = self.targets
        try:
            if "intercom" in self.platforms:
                self._intercom = self._client(
                    "intercom",
                    lambda tr: intercom_http(t.intercom_url, t.intercom_token, transport=tr),
                )
                self.intercom_admins = await find_human_admins(self._intercom)
                if not self.intercom_admins:
                    raise RuntimeError("the Intercom workspace has no admin besides the token's")
            if "zendesk" in self.platforms:
                agent = self._client(
                    "zendesk",
                    lambda tr: zendesk_http(t.zendesk_url, t.zendesk_agent_auth, transport=tr),
                )
                self.zendesk_agent = ZendeskAgent(agent)
                await self.zendesk_agent.user_id()
                self.zendesk_form = self._client(
                    "zendesk",
                    lambda tr: zendesk_http(t.zendesk_url, t.zendesk_form_auth, transport=tr),
                )
            if "zendesk_conversations" in self.platforms:
                api = self._client(
                    "zendesk_conversations",
                    lambda tr: sunshine_http(
                        t.sunshine_url,
                        key_id=t.sunshine_key_id,
                        key_secret=t.sunshine_key_secret,
                        transport=tr,
                    ),
                )
                widget = self._client(
                    "zendesk_conversations", lambda tr: widget_http(t.sunshine_url, transport=tr)
                )
                self._sunshine = (api, widget)
                self.ai_agent = SunshineAIAgent(api, app_id=t.sunshine_app_id)
                self.workspace_agents = [
                    SunshineHumanAgent(widget, agent_id=i, name=n) for i, n in _WORKSPACE_AGENTS
                ]
            if "salesforce" in self.platforms:
                console = self._client(
                    "salesforce", lambda tr: salesforce_http(t.salesforce_url, transport=tr)
                )
                self.console_user = SalesforceConsoleUser(
                    console,
                    consumer_key=t.salesforce_consumer_key,
                    refresh_token=t.salesforce_refresh_token,
                    consumer_secret=t.salesforce_consumer_secret,
                    api_version=t.salesforce_api_version,
                )
                await self.console_user.sign_in()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- customers, one actor each -------------------------------------------------------

    def intercom_customer(self, email: str, name: str) -> IntercomCustomer:
        if self._intercom is None:
            raise RuntimeError("intercom is not among the platforms of this run")
        if email not in self._customers:
            self._customers[email] = IntercomCustomer(self._intercom, email=email, name=name)
        return self._customers[email]

    def sunshine_user(self, customer: Customer) -> SunshineEndUser:
        if self._sunshine is None:
            raise RuntimeError("zendesk_conversations is not among the platforms of this run")
        if customer.key not in self._end_users:
            api, widget = self._sunshine
            self._end_users[customer.key] = SunshineEndUser(
                api,
                widget,
                app_id=self.targets.sunshine_app_id,
                external_id=customer.key,
                given_name=customer.first_name,
                surname=customer.last_name,
                email=customer.email,
            )
        return self._end_users[customer.key]

    def zendesk_requester(self, customer: Customer) -> ZendeskRequester:
        """A requester writing in through the web form backend's client."""
        if self.zendesk_form is None:
            raise RuntimeError("zendesk is not among the platforms of this run")
        return ZendeskRequester(self.zendesk_form, name=customer.name, email=customer.email)

    async def salesforce_contact(self, customer: Customer) -> tuple[str, bool]:
        """The customer's Contact id, and whether this call created it."""
        assert self.console_user is not None
        async with self._lock(f"salesforce:{customer.key}"):
            if customer.key in self._contacts:
                return self._contacts[customer.key], False
            contact_id = await self.console_user.create_contact(
                first_name=customer.first_name,
                last_name=customer.last_name,
                email=customer.email,
            )
            self._contacts[customer.key] = contact_id
            return contact_id, True

    async def zendesk_profile(self, customer: Customer) -> tuple[int, bool]:
        """The customer's Zendesk user with both addresses, and whether this call added it."""
        assert self.zendesk_agent is not None
        assert customer.secondary_email is not None
        async with self._lock(f"zendesk:{customer.key}"):
            if customer.key in self._profiles:
                return self._profiles[customer.key], False
            user_id = await self.zendesk_agent.record_secondary_email(
                name=customer.name, email=customer.email, secondary=customer.secondary_email
            )
            self._profiles[customer.key] = user_id
            return user_id, True
