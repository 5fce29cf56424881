"""Who the customer is in Zendesk: identity resolution on the target.

A ticket's requester is created first (``POST users``, one call for a new customer; issue
11): Create User is no upsert, so a customer Zendesk knows by any of the emails or the
external id answers 422 ``DuplicateValue`` and writes nothing, not even a name. Then the
lookups, in a fixed order, each a search Zendesk answers from its own identities: the primary
email, then each secondary email (Zendesk's user identities make a secondary address find its
user), then the external id. When every lookup missed (a user too new for the search index,
such as one an earlier attempt of this command created before its answer was lost), the user
comes from ``create_or_update``, Zendesk's upsert by email and external id: two commands for
one new customer racing each other (two conversations escalated at once) end as one user.
A returning customer costs the failed create on top of the lookup.
"""

from __future__ import annotations

from connectors.base.links import normalise_email
from connectors.zendesk.client import DuplicateUserError, ZendeskClient
from connectors.zendesk.models import User, contact_emails, user_payload
from schemas.errors import FatalAPIError
from schemas.models import Case, Contact

__all__ = ["ZendeskIdentity"]


class ZendeskIdentity:
    def __init__(self, client: ZendeskClient) -> None:
        self._client = client

    async def find_user(self, contact: Contact) -> User | None:
        """Primary email, then each secondary email, then external_id; None when all miss."""
        for email in contact_emails(contact):
            users = [u for u in await self._client.search_users_by_email(email) if u.active]
            if users:
                return users[0]
        if contact.external_id:
            matches = await self._client.users_by_external_id(contact.external_id)
            users = [u for u in matches if u.active]
            if users:
                return users[0]
        return None

    async def customer(self, contact: Contact | None, case: Case) -> tuple[User, bool]:
        """The ticket's requester: created, else found, else upserted; True when the user is
        the answer to this call's create (it holds what this call wrote)."""
        if contact is None and case.requester is not None and case.requester.email:
            contact = Contact(emails=[case.requester.email], name=case.requester.name)
        if contact is None:
            raise FatalAPIError(
                "case/upsert without a customer (no contact, no requester email): Zendesk needs "
                "a requester; a planner bug"
            )
        payload = user_payload(contact, None)
        try:
            return await self._client.create_user(payload), True
        except DuplicateUserError:
            pass  # Zendesk knows this customer: find them, as a lookup-first resolution would
        found = await self.find_user(contact)
        if found is not None:
            return found, False
        user, _ = await self._client.create_or_update_user(payload)
        return user, True

    async def add_emails(self, user_id: str, contact: Contact) -> bool:
        """Add the contact's addresses the user lacks as identities; True if any was added."""
        known = {normalise_email(i.value) for i in await self._client.identities(user_id)}
        missing = [e for e in contact_emails(contact) if e not in known]
        for email in missing:
            await self._client.add_email_identity(user_id, email)
        return bool(missing)
