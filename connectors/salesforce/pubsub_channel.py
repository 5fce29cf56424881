"""Where the Pub/Sub transport connects, and how: TLS with the system's root CAs (Salesforce's
own endpoint), TLS with a CA bundle of the operator's (a sandbox, a TLS-inspecting proxy), or
plaintext, which only a sandbox on this machine may be asked for.

Production Pub/Sub is TLS only: ``api.pubsub.salesforce.com:7443`` ("Pub/Sub API Endpoint",
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/pub-sub-endpoints.html), and
every call carries the session's access token in its metadata, so plaintext would hand the
token to anyone on the path. A certificate the worker does not trust is one clear error
(:meth:`PubSubEndpoint.refused`) naming the endpoint and the setting to change, not a
retriable "unavailable" repeated forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio

from connectors.salesforce.settings import PUBSUB_ENDPOINT, SalesforceSettings
from schemas.errors import ConfigurationError

__all__ = ["PubSubEndpoint"]


@dataclass(frozen=True, slots=True)
class PubSubEndpoint:
    #: ``host:port``
    target: str = PUBSUB_ENDPOINT
    tls: bool = True
    #: PEM certificates to trust instead of the system's root CAs
    ca_file: Path | None = None
    #: the connector's variable prefix, for messages (``DESKSTREAM_CONNECTORS__<id>__``)
    settings_prefix: str = "DESKSTREAM_CONNECTORS__<id>__"

    @classmethod
    def of(cls, settings: SalesforceSettings, connector_id: str) -> PubSubEndpoint:
        return cls(
            settings.pubsub_endpoint,
            settings.pubsub_tls,
            settings.pubsub_ca_file,
            f"DESKSTREAM_CONNECTORS__{connector_id}__",
        )

    def channel(self) -> aio.Channel:
        """A new channel to the endpoint (the caller closes it)."""
        if not self.tls:
            return aio.insecure_channel(self.target)
        return aio.secure_channel(self.target, grpc.ssl_channel_credentials(self._roots()))

    def _roots(self) -> bytes | None:
        """The CA bundle's bytes, read now (a renewed bundle applies at the next connect);
        None: the system's root CAs."""
        if self.ca_file is None:
            return None
        variable = f"{self.settings_prefix}PUBSUB_CA_FILE"
        try:
            roots = self.ca_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the Pub/Sub CA bundle {self.ca_file} ({exc.strerror}); point "
                f"{variable} at a readable PEM file, or unset it for Salesforce's own endpoint"
            ) from None
        if b"-----BEGIN CERTIFICATE-----" not in roots:
            raise ConfigurationError(
                f"the Pub/Sub CA bundle {self.ca_file} holds no PEM certificate; point "
                f"{variable} at the CA certificate (PEM) that signed {self.target}'s"
            )
        return roots

    def refused(self, error: aio.AioRpcError) -> ConfigurationError | None:
        """The clear error for a TLS handshake that failed (None for any other failure):
        what happened, at which endpoint, and which setting to change."""
        details = error.details() or ""
        if error.code() != grpc.StatusCode.UNAVAILABLE or "handshake failed" not in (
            details.lower()
        ):
            return None
        variable = f"{self.settings_prefix}PUBSUB_CA_FILE"
        trusted = f"the CA bundle {self.ca_file}" if self.ca_file else "the system's root CAs"
        if "WRONG_VERSION_NUMBER" in details:
            why = (
                f"{self.target} does not answer in TLS (a sandbox's plaintext port?); use its "
                f"TLS port, or for a sandbox on this machine set {self.settings_prefix}"
                "PUBSUB_TLS=false"
            )
        else:
            why = (
                f"its certificate is not signed by a CA this worker trusts ({trusted}). For "
                f"Salesforce's endpoint ({PUBSUB_ENDPOINT}) leave {variable} unset (the system's "
                f"root CAs); for a sandbox or a TLS-inspecting proxy set {variable} to the CA "
                "certificate that signed it (`deskstream sandbox` prints the sandbox's)"
            )
        return ConfigurationError(
            f"TLS handshake with the Salesforce Pub/Sub API at {self.target} failed: {why}"
        )
