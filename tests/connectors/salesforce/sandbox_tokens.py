"""A token source for the tests: the refresh token flow against the sandbox, as the sandbox's
own tests get their tokens (the production token sources are ``connectors.salesforce.auth``).
"""

from __future__ import annotations

from connectors.salesforce.session import SalesforceSession
from sandboxes.salesforce import SalesforceSandboxConfig
from tests.sandboxes.salesforce.conftest import SalesforceEnv, refresh_token_grant

__all__ = ["SandboxTokens"]


class SandboxTokens:
    """Keeps one session; a new grant after ``invalidate`` (counted in ``grants``)."""

    def __init__(self, url: str, config: SalesforceSandboxConfig) -> None:
        self._url = url
        self._config = config
        self._session: SalesforceSession | None = None
        self.grants = 0
        self.invalidated: list[SalesforceSession] = []

    @classmethod
    def of(cls, env: SalesforceEnv) -> SandboxTokens:
        return cls(env.url, env.config)

    async def session(self) -> SalesforceSession:
        if self._session is None:
            grant = await refresh_token_grant(self._url, self._config)
            self.grants += 1
            # The identity URL is https://login.salesforce.com/id/<org id>/<user id>.
            org_id = str(grant["id"]).rstrip("/").split("/")[-2]
            self._session = SalesforceSession(
                str(grant["instance_url"]).rstrip("/"), str(grant["access_token"]), org_id
            )
        return self._session

    async def invalidate(self, session: SalesforceSession) -> None:
        self.invalidated.append(session)
        if self._session == session:
            self._session = None
