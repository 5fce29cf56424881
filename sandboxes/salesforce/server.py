"""The Salesforce sandbox: one org served over REST, OAuth, CometD and a Pub/Sub gRPC port.

The platform behaviour lives in the modules it serves, each citing its sources: ``auth``
(OAuth flows), ``rest_common`` (error bodies, ``Sforce-Limit-Info``, API versions),
``routes_sobjects`` (upsert by external id), ``routes_misc`` (sObject Collections),
``routes_query`` (SOQL Query and QueryAll), ``cdc`` and friends (Change Data Capture). What
this module adds is how injected faults look:

* a 5xx is ``[{"message","errorCode"}]`` with ``SERVER_UNAVAILABLE`` (503) or
  ``UNKNOWN_EXCEPTION`` (500), the shape of "Status Codes and Error Responses",
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
  ("500: an error has occurred within Lightning Platform"; "503: the server is unavailable");
  the codes and the ErrorId wording are UNVERIFIED (query: "Salesforce REST API status codes
  and error responses");
* a rate-limit burst is 403 ``REQUEST_LIMIT_EXCEEDED`` (same page: "If the error code is
  REQUEST_LIMIT_EXCEEDED, you've exceeded API request limits in your org"), never 429, and
  with no ``Retry-After`` (no page documents one: the harsher reading). The
  ``ConcurrentPerOrgLongTxn`` message is UNVERIFIED.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import grpc
from aiohttp import web
from grpc import aio

from connectors.base.settings import ConnectorSettings
from connectors.salesforce.pubsub import pubsub_api_pb2_grpc as pb_grpc
from sandboxes.base.faults import ADMIN_PREFIX
from sandboxes.base.server import Middleware, PlatformSandbox, SandboxContext
from sandboxes.salesforce.catalog import CDC_ENTITIES
from sandboxes.salesforce.cdc import ChangeEvent
from sandboxes.salesforce.cdc_schema import CHANGE_TYPES
from sandboxes.salesforce.cometd import CometdServer
from sandboxes.salesforce.pubsub import PubSubService
from sandboxes.salesforce.rest_common import api_middleware, error_body, errors_response
from sandboxes.salesforce.routes_misc import MiscRoutes
from sandboxes.salesforce.routes_query import QueryRoutes
from sandboxes.salesforce.routes_sobjects import SObjectRoutes
from sandboxes.salesforce.state import Org, SalesforceSandboxConfig
from sandboxes.salesforce.tls import issue

__all__ = ["SalesforceSandbox"]

logger = logging.getLogger(__name__)

ADMIN = f"{ADMIN_PREFIX}/salesforce"


class SalesforceSandbox(PlatformSandbox):
    """An offline Salesforce org (Service Cloud objects, Change Data Capture).

    HTTP (the sandbox port): ``/services/oauth2/token``, ``/services/data/vXX.X/...`` REST and
    ``/cometd/XX.X``. gRPC: the Pub/Sub API on :attr:`pubsub_target` once started, over TLS
    with the sandbox's own CA (:attr:`pubsub_ca_file`; :meth:`pubsub_channel` dials it) unless
    the config asks for plaintext. Admin:
    ``POST {ADMIN}/gap`` publishes a gap event, ``POST {ADMIN}/certificates`` registers a JWT
    certificate, ``POST {ADMIN}/sessions/expire`` ends every session.
    """

    platform: ClassVar[str] = "salesforce"

    def __init__(
        self, *, context: SandboxContext, config: SalesforceSandboxConfig | None = None
    ) -> None:
        super().__init__(context=context)
        self.config = config or SalesforceSandboxConfig()
        self.org = Org(self.config, context)
        self.cometd = CometdServer(self.org)
        self.pubsub = PubSubService(self.org)
        self._grpc: aio.Server | None = None
        self.pubsub_port: int | None = None
        #: the CA certificate (PEM) a client trusts for the Pub/Sub port; None in plaintext
        self.pubsub_ca_file: Path | None = None
        self._ca_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pubsub_target(self) -> str:
        """``host:port`` of the Pub/Sub API (after :meth:`start`)."""
        if self.pubsub_port is None:
            raise RuntimeError("the Pub/Sub API listens only once the sandbox has started")
        return f"{self.config.pubsub_host}:{self.pubsub_port}"

    def pubsub_channel(self) -> aio.Channel:
        """A channel to the Pub/Sub API as a client configured for this sandbox dials it (its
        CA trusted; plaintext only when the sandbox serves plaintext)."""
        if self.pubsub_ca_file is None:
            return aio.insecure_channel(self.pubsub_target)
        roots = grpc.ssl_channel_credentials(self.pubsub_ca_file.read_bytes())
        return aio.secure_channel(self.pubsub_target, roots)

    # -- PlatformSandbox ------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.add_routes(
            [
                web.post("/services/oauth2/token", self.org.oauth.token_endpoint),
                web.post("/services/oauth2/revoke", self.org.oauth.revoke_endpoint),
                *SObjectRoutes(self.org).routes(),
                *MiscRoutes(self.org).routes(),
                *QueryRoutes(self.org).routes(),
                *self.cometd.routes(),
                web.post(f"{ADMIN}/gap", self.admin_gap),
                web.post(f"{ADMIN}/certificates", self.admin_certificate),
                web.post(f"{ADMIN}/sessions/expire", self.admin_expire_sessions),
            ]
        )
        # Release held long-polls before aiohttp waits for in-flight handlers to finish.
        app.on_shutdown.append(self.cometd.shutdown)

    def middlewares(self) -> list[Middleware]:
        return [api_middleware(self.org)]

    def is_write(self, request: web.Request) -> bool:
        # CometD's handshake and long polls, and the OAuth token exchange, travel as POST but
        # change no record: they are never ambiguous writes.
        path = request.path
        return super().is_write(request) and not path.startswith(("/cometd/", "/services/oauth2/"))

    def reset(self) -> None:
        self.cometd.close_all()
        self.org.bus.wake_all()
        self.org.build()
        logger.info("salesforce sandbox reset org_id=%s", self.org.org_id)

    def snapshot(self) -> dict[str, Any]:
        store = self.org.store
        return {
            "org": self.org.credentials(),
            "instance_url": self.context.base_url,
            "pubsub": None if self.pubsub_port is None else self.pubsub_target,
            "records": {name: list(records.values()) for name, records in store.records.items()},
            "files": {version_id: len(data) for version_id, data in store.blobs.items()},
            "cdc": {
                "retained": len(self.org.bus.events),
                "latest_replay_id": self.org.bus.latest_replay_id,
            },
            "api_usage": {"used": self.org.usage.used, "limit": self.org.usage.limit},
        }

    def describe(self) -> dict[str, str]:
        details = {
            "org_id": self.org.org_id,
            "username": self.config.username,
            "consumer_key": self.config.consumer_key,
            "refresh_token": self.config.refresh_token,
            "agent_username": self.config.agent_username,
            "agent_refresh_token": self.config.agent_refresh_token,
        }
        if self.pubsub_port is not None:
            details["pubsub"] = self.pubsub_target
        if self.pubsub_ca_file is not None:
            details["pubsub_ca_file"] = str(self.pubsub_ca_file)
        return details

    def worker_connector(
        self, *, transport: str = "pubsub", poll_seconds: float = 10.0
    ) -> ConnectorSettings:
        """The worker's connector for this org: it signs in with the seeded connected app's
        refresh token, as the integration user (changes that user commits are its echoes),
        and ingests Cases and Contacts by Change Data Capture over ``transport`` (``pubsub``
        on this sandbox's gRPC port, trusting its CA, or ``cometd``), CaseComments by polling
        and a reconciliation pass, both every ``poll_seconds``."""
        config = self.config
        cdc = {"transport": transport}
        values: dict[str, Any] = {
            "platform": "salesforce",
            "login_url": self.context.base_url,
            "client_id": config.consumer_key,
            "client_secret": config.consumer_secret,
            "refresh_token": config.refresh_token,
            "service_account_id": self.org.user_id,
            "unassigned_owner_id": self.org.queue_id,
            "sources": {
                "cdc_case": cdc,
                "cdc_contact": cdc,
                "comments": {"poll_seconds": poll_seconds},
                "reconcile": {"poll_seconds": poll_seconds},
            },
        }
        if self.pubsub_port is not None:
            values["pubsub_endpoint"] = self.pubsub_target
            if self.pubsub_ca_file is not None:
                values["pubsub_ca_file"] = str(self.pubsub_ca_file)
            else:
                values["pubsub_tls"] = False  # the sandbox was asked for plaintext
        return ConnectorSettings.model_validate(values)

    def counters(self) -> dict[str, Any]:
        return {
            **self.org.bus.counters.as_dict(),
            "api_usage": self.org.usage.used,
            "sessions": len(self.org.oauth.sessions),
            "cometd_clients": len(self.cometd.clients),
            "cometd_delivered": self.cometd.delivered,
            "pubsub_streams": self.pubsub.streams,
            "pubsub_delivered": self.pubsub.delivered,
        }

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        if status == 503:
            body = error_body("SERVER_UNAVAILABLE", "Server temporarily unavailable: " + message)
        else:
            body = error_body(
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact "
                f"support: {self.context.rng.randrange(10**8, 10**9)}-"
                f"{self.context.rng.randrange(10**4, 10**5)} ({code})",
            )
        response = errors_response(status, [body])
        response.headers["Sforce-Limit-Info"] = self.org.usage.header()
        return response

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        # Salesforce has no 429: too many concurrent long requests is a 403 with this code,
        # and it sends no Retry-After.
        response = errors_response(
            403, [error_body("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")]
        )
        response.headers["Sforce-Limit-Info"] = self.org.usage.header()
        return response

    async def start(self) -> None:
        server = aio.server()
        pb_grpc.add_PubSubServicer_to_server(self.pubsub, server)
        address = f"{self.config.pubsub_host}:{self.config.pubsub_port}"
        if self.config.pubsub_tls:
            certificates = issue([self.config.pubsub_host])
            credentials = grpc.ssl_server_credentials(
                [(certificates.key_pem, certificates.chain_pem)]
            )
            self.pubsub_port = server.add_secure_port(address, credentials)
            self.pubsub_ca_file = self._ca_folder() / f"pubsub-ca-{self.pubsub_port}.pem"
            self.pubsub_ca_file.write_bytes(certificates.ca_pem)
        else:
            self.pubsub_port = server.add_insecure_port(address)
        await server.start()
        self._grpc = server
        logger.info(
            "salesforce pubsub listening target=%s tls=%s ca_file=%s",
            self.pubsub_target,
            self.config.pubsub_tls,
            self.pubsub_ca_file,
        )

    def _ca_folder(self) -> Path:
        if self.config.pubsub_ca_dir is not None:
            self.config.pubsub_ca_dir.mkdir(parents=True, exist_ok=True)
            return self.config.pubsub_ca_dir
        self._ca_dir = tempfile.TemporaryDirectory(prefix="deskstream-salesforce-")
        return Path(self._ca_dir.name)

    async def stop(self) -> None:
        await self.cometd.shutdown()
        self.org.bus.wake_all()
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
            self._grpc = None
        if self._ca_dir is not None:
            self._ca_dir.cleanup()
            self._ca_dir = None

    # -- admin ----------------------------------------------------------------------------

    def publish_gap(
        self, entity: str, change_type: str = "GAP_OVERFLOW", record_ids: list[str] | None = None
    ) -> ChangeEvent:
        """Publish a header-only gap event (also ``POST /_sandbox/salesforce/gap``)."""
        if entity not in CDC_ENTITIES:
            raise ValueError(f"no change events for {entity!r}; choose one of {CDC_ENTITIES}")
        return self.org.bus.publish_gap(
            entity, change_type, list(record_ids or []), user_id=self.org.user_id
        )

    async def admin_gap(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            event = self.publish_gap(
                str(body["entity"]),
                str(body.get("changeType", "GAP_OVERFLOW")),
                [str(i) for i in body.get("recordIds", [])],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response(
                {
                    "error": "invalid_gap",
                    "message": str(exc),
                    "change_types": [t for t in CHANGE_TYPES if t.startswith("GAP_")],
                },
                status=400,
            )
        return web.json_response({"replayId": event.replay_id, "header": event.header})

    async def admin_certificate(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            self.org.add_certificate(text)
        except ValueError as exc:
            return web.json_response(
                {"error": "invalid_certificate", "message": str(exc)}, status=400
            )
        return web.json_response({"certificates": len(self.org.app.public_keys)})

    async def admin_expire_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.org.oauth.expire_all()})
