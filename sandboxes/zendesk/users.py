"""Users and their identities: create, create-or-update, search, secondary emails.

Methods validate everything before they change anything (a refused request leaves no trace)
and return the webhook events the change causes, as ``(kind, event)`` pairs.
"""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.zendesk.errors import record_invalid
from sandboxes.zendesk.events import Change
from sandboxes.zendesk.state import Identity, User, ZendeskState

__all__ = ["ROLES", "UserService"]

ROLES = ("end-user", "agent", "admin")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SIMPLE_FIELDS = ("phone", "notes", "details", "locale", "time_zone")


def _email(value: Any) -> str:
    email = str(value).strip()
    if not _EMAIL_RE.match(email):
        raise record_invalid("email", f"Email: {email} is not properly formatted")
    return email


def _external_id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class UserService:
    def __init__(self, state: ZendeskState, clock: Clock, *, search_lag_s: float = 0.0) -> None:
        self._state = state
        self._clock = clock
        self._search_lag = timedelta(seconds=search_lag_s)

    # -- lookups ---------------------------------------------------------------------------

    def match(self, payload: dict[str, Any]) -> User | None:
        """The user ``create_or_update`` would update: by external_id, then by any email."""
        external_id = _external_id(payload.get("external_id"))
        if external_id is not None:
            found = self._state.user_by_external_id(external_id)
            if found is not None:
                return found
        if payload.get("email"):
            return self._state.user_by_email(str(payload["email"]))
        return None

    def search(self, query: str) -> list[User]:
        """Zendesk search syntax, the parts a sync uses: ``email:``, ``external_id:``,
        ``name:``, ``role:``, ``tags:`` terms (ANDed) and free text over name and emails."""
        try:
            terms = shlex.split(query)
        except ValueError:
            terms = query.split()
        # The lookups a sync makes on every event go through the indexes, not a scan.
        if len(terms) == 1 and terms[0].lower().startswith(("email:", "external_id:")):
            key, _, value = terms[0].partition(":")
            if key.lower() == "email":
                found = self._state.user_by_email(value)
            else:
                found = self._state.user_by_external_id(value)
            return [found] if found is not None and self._searchable(found) else []
        users = [u for u in self._state.users.values() if self._searchable(u)]
        for term in terms:
            key, sep, value = term.partition(":")
            if not sep:
                key, value = "", term
            users = [u for u in users if self._term_matches(u, key.lower(), value.lower())]
        return sorted(users, key=lambda u: u.id)

    def _searchable(self, user: User) -> bool:
        """Active and indexed: a user created less than the index lag ago is not found yet."""
        return user.active and user.created_at + self._search_lag <= self._clock.now()

    def _term_matches(self, user: User, key: str, value: str) -> bool:
        emails = [i.value.lower() for i in self._state.identities_of(user.id) if i.type == "email"]
        if key == "email":
            return value in emails
        if key == "external_id":
            return (user.external_id or "").lower() == value
        if key == "name":
            return value in user.name.lower()
        if key == "role":
            return user.role == value
        if key in ("tags", "tag"):
            return value in user.tags
        return value in user.name.lower() or any(value in e for e in emails)

    # -- writes ----------------------------------------------------------------------------

    def create(
        self, payload: dict[str, Any], *, id_kind: str = "user"
    ) -> tuple[User, list[Change]]:
        """A new user; 422 when the email or external_id already belongs to someone.
        ``id_kind``: the id range (``staff`` for the seeded agents)."""
        name = str(payload.get("name") or "").strip()
        if not name:
            raise record_invalid("name", "Name:  is too short (minimum is 1 character)", "TooShort")
        email = _email(payload["email"]) if payload.get("email") else None
        extra = [
            _email(i["value"])
            for i in payload.get("identities") or []
            if isinstance(i, dict) and i.get("type") == "email" and i.get("value")
        ]
        for address in [a for a in (email, *extra) if a is not None]:
            if self._state.user_by_email(address) is not None:
                raise record_invalid(
                    "email",
                    f"Email: {address} is already being used by another user",
                    "DuplicateValue",
                )
        external_id = _external_id(payload.get("external_id"))
        if external_id is not None and self._state.user_by_external_id(external_id):
            raise record_invalid(
                "external_id", f"External: {external_id} has already been taken", "DuplicateValue"
            )
        role = self._role(payload.get("role", "end-user"))
        now = self._clock.now()
        primary = email or (extra[0] if extra else None)
        user = User(
            id=self._state.next_id(id_kind),
            name=name,
            email=primary,
            role=role,
            created_at=now,
            updated_at=now,
            verified=bool(payload.get("verified", False)),
            tags=self._tags(payload.get("tags")),
            user_fields=dict(payload.get("user_fields") or {}),
            organization_id=payload.get("organization_id"),
        )
        for key in _SIMPLE_FIELDS:
            if payload.get(key) is not None:
                setattr(user, key, str(payload[key]))
        self._state.users[user.id] = user
        self._state.set_user_external_id(user, external_id)
        for address in dict.fromkeys(a for a in (email, *extra) if a is not None):
            self._add_identity(user, "email", address, primary=address == primary)
        return user, [("created", {})]  # "created" carries no change body (UNVERIFIED)

    def update(self, user: User, payload: dict[str, Any]) -> list[Change]:
        """Apply the given fields; a new email becomes the primary identity."""
        changes: list[Change] = []
        new_email = _email(payload["email"]) if payload.get("email") else None
        if new_email is not None:
            owner = self._state.user_by_email(new_email)
            if owner is not None and owner.id != user.id:
                raise record_invalid(
                    "email",
                    f"Email: {new_email} is already being used by another user",
                    "DuplicateValue",
                )
        if "external_id" in payload:
            external_id = _external_id(payload["external_id"])
            owner = self._state.user_by_external_id(external_id) if external_id else None
            if owner is not None and owner.id != user.id:
                raise record_invalid(
                    "external_id",
                    f"External: {external_id} has already been taken",
                    "DuplicateValue",
                )
        role = self._role(payload["role"]) if "role" in payload else user.role
        if payload.get("name") is not None and str(payload["name"]).strip() != user.name:
            previous, user.name = user.name, str(payload["name"]).strip()
            changes.append(("name_changed", {"current": user.name, "previous": previous}))
        if "external_id" in payload:
            external_id = _external_id(payload["external_id"])
            if external_id != user.external_id:
                previous_id = user.external_id
                self._state.set_user_external_id(user, external_id)
                changes.append(
                    ("external_id_changed", {"current": external_id, "previous": previous_id})
                )
        if role != user.role:
            changes.append(("role_changed", {"current": role, "previous": user.role}))
            user.role = role
        if "tags" in payload:
            tags = self._tags(payload["tags"])
            added = [t for t in tags if t not in user.tags]
            removed = [t for t in user.tags if t not in tags]
            user.tags = tags
            if added or removed:
                changes.append(("tags_changed", {"tags_added": added, "tags_removed": removed}))
        for key, kind in (("notes", "notes_changed"), ("details", "details_changed")):
            if payload.get(key) is not None and str(payload[key]) != getattr(user, key):
                current = str(payload[key])
                changes.append((kind, {"current": current, "previous": getattr(user, key)}))
                setattr(user, key, str(payload[key]))
        for key in ("phone", "locale", "time_zone"):
            if payload.get(key) is not None:
                setattr(user, key, str(payload[key]))
        if isinstance(payload.get("user_fields"), dict):
            for key, value in payload["user_fields"].items():
                if user.user_fields.get(key) != value:
                    changes.append(
                        (
                            "custom_field_changed",
                            {
                                "current": value,
                                "previous": user.user_fields.get(key),
                                "custom_field": {"key": key},
                            },
                        )
                    )
                    user.user_fields[key] = value
        if new_email is not None and self._state.user_by_email(new_email) is None:
            for identity in self._state.identities_of(user.id):
                identity.primary = False
            identity = self._add_identity(user, "email", new_email, primary=True)
            user.email = new_email
            changes.append(("identity_created", {"identity": self.identity_event(identity)}))
        if changes:
            user.updated_at = self._clock.now()
        return changes

    def delete(self, user: User) -> list[Change]:
        """``DELETE /api/v2/users/{id}`` (the spec's "Delete User"): a soft delete that leaves
        the user ``active: false`` and 404 to the API, as its response example shows.

        "User events" (https://developer.zendesk.com/api-reference/webhooks/event-types/user-events)
        lists ``zen:event-type:user.deleted`` among the user event types; the Events
        Connector's "User events" (https://developer.zendesk.com/api-reference/amazon-eventbridge/users/)
        says ``Active Status Changed`` turns false when a user is soft deleted;
        the sandbox sends both, in that order. UNVERIFIED: whether ``user.deleted`` comes with
        the soft delete or only with the permanent one (``deleted_users/{id}``), and its
        ``event`` body (sent empty, as for ``ticket.soft_deleted``). The detail keeps the
        email, so a consumer can still find the contact it linked by email.
        """
        user.active = False
        user.updated_at = self._clock.now()
        return [("active_changed", {"current": False, "previous": True}), ("deleted", {})]

    def add_identity(self, user: User, payload: dict[str, Any]) -> tuple[Identity, list[Change]]:
        kind = str(payload.get("type") or "")
        if kind not in ("email", "phone_number", "twitter", "facebook", "google", "sdk"):
            raise record_invalid("type", f"Type: {kind} is not a valid identity type")
        value = _email(payload.get("value")) if kind == "email" else str(payload.get("value"))
        if kind == "email" and self._state.user_by_email(value) is not None:
            raise record_invalid(
                "value", f"Value: {value} is already being used by another user", "DuplicateValue"
            )
        identity = self._add_identity(user, kind, value, primary=False)
        if payload.get("verified"):
            identity.verified = True
        user.updated_at = self._clock.now()
        # UNVERIFIED: the docs name the event but show no body; the identity goes under "identity".
        return identity, [("identity_created", {"identity": self.identity_event(identity)})]

    @staticmethod
    def identity_event(identity: Identity) -> dict[str, Any]:
        return {
            "id": str(identity.id),
            "type": identity.type,
            "value": identity.value,
            "primary": identity.primary,
            "verified": identity.verified,
        }

    def _add_identity(self, user: User, kind: str, value: str, *, primary: bool) -> Identity:
        now = self._clock.now()
        identity = Identity(
            id=self._state.next_id("identity"),
            user_id=user.id,
            type=kind,
            value=value,
            primary=primary,
            verified=user.verified,
            created_at=now,
            updated_at=now,
        )
        self._state.add_identity(identity)
        return identity

    @staticmethod
    def _role(value: Any) -> str:
        role = str(value)
        if role not in ROLES:
            raise record_invalid("role", f"Role: {role} is not a valid role")
        return role

    @staticmethod
    def _tags(value: Any) -> list[str]:
        if value is None:
            return []
        items = value.split() if isinstance(value, str) else [str(v) for v in value]
        return list(dict.fromkeys(t.strip() for t in items if t.strip()))
