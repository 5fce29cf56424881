"""What every polling source of a platform's REST API shares: its connector id and feed
settings, its clock, its name (``<connector id>.<kind>``) and an HTTP client of its own
(closed with the source) or an injected one (tests), so a platform's feed writes only its
reading (``connectors.zendesk.incremental``, ``connectors.intercom.polling``, ...)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

import httpx

from connectors.base.http import platform_http
from connectors.base.settings import ConnectorSettings, SourceSettings
from connectors.base.source import Source
from schemas.errors import ConfigurationError

__all__ = ["ApiFeed"]


class ApiFeed(Source):
    kind: ClassVar[str]
    #: the platform's API address when the connector sets none (None: it must set one)
    default_base_url: ClassVar[str | None] = None
    timeout: ClassVar[httpx.Timeout] = httpx.Timeout(30.0, connect=10.0)

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        source: SourceSettings,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base_url = settings.api_base_url or self.default_base_url
        if not base_url:
            raise ConfigurationError(
                f"connector {connector_id!r} has no api_base_url, so its {self.kind} feed "
                f"cannot be read; set DESKSTREAM_CONNECTORS__{connector_id}__API_BASE_URL"
            )
        self.connector_id = connector_id
        self._connector = settings
        self._settings = source
        self._clock = clock
        self._owns_http = http is None
        self._http = http or platform_http(self.timeout, base_url=base_url)

    @property
    def name(self) -> str:
        return f"{self.connector_id}.{self.kind}"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
