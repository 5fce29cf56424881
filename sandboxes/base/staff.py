"""The support team the sandboxes seed: the same people, by email, on every platform.

A person who works cases has an account on each platform under an id of that platform (a
Zendesk agent user, an Intercom admin, a Salesforce User); what the accounts share is the email,
which is how Deskstream's owner ⇄ assignee flow finds one person across the three. The
sandboxes seed ``SHARED`` on all three, so a rehearsal or the demo can assign a ticket in
Zendesk and see the same person own the Case and the conversation; ``ZENDESK_ONLY`` has no
account anywhere else, so assigning to them shows what a sync does with an owner the target
does not know (it leaves the owner out of the write and audits why).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SHARED", "ZENDESK_ONLY", "StaffMember"]


@dataclass(frozen=True, slots=True)
class StaffMember:
    first_name: str
    last_name: str
    email: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


SHARED: tuple[StaffMember, ...] = (
    StaffMember("Ada", "Agent", "ada@sandbox.example"),
    StaffMember("Ben", "Agent", "ben@sandbox.example"),
)
ZENDESK_ONLY: tuple[StaffMember, ...] = (StaffMember("Cleo", "Agent", "cleo@sandbox.example"),)
