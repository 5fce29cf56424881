"""Contact profiles: name, phone, company, plan and custom attributes flow per field and per
direction (``profile_fields``), with the same ownership, conflict, echo and convergence checks
as case fields. Absent values never erase present ones.
"""

from __future__ import annotations

from typing import Any

from schemas.models import CommandAction, Contact, EntityType
from streams.decide import accept_field, decide_field
from streams.flows import FlowContext
from streams.mapping import other_side, profile_value

__all__ = ["on_contact"]


def on_contact(ctx: FlowContext) -> None:
    contact = ctx.event.data
    side, target = ctx.side, other_side(ctx.side)
    if not isinstance(contact, Contact):
        ctx.note("sync", "ignored", f"{side} deleted the contact; its mirror is kept")
        return
    ctx.state.records[side] = contact.model_dump(mode="json")
    if not ctx.config.flows.profile_sync.enabled:
        ctx.note("rules", "flow_off", "profile_sync is switched off")
        return
    wanted = {
        field
        for field, direction in ctx.config.profile_fields.items()
        if direction in ("both", f"{side}_to_{target}")
    }
    updates: dict[str, Any] = {}
    for field in sorted(wanted):
        value = profile_value(contact, field)
        # Only what really changed on this side (a contact notification re-sends them all).
        if value is None or ctx.state.known(side, field) == value:
            continue
        verdict = decide_field(
            ctx.state,
            ctx.config,
            side=side,
            record_id=ctx.event.source.entity_id,
            field=field,
            source_value=value,
            target_value=value,
            source_time=ctx.source_time,
            now=ctx.ts,
        )
        if not verdict.cross:
            ctx.note("sync", verdict.decision, verdict.reason, field=field)
            continue
        accept_field(
            ctx.state, side=side, field=field, target_value=value, source_time=ctx.source_time
        )
        updates[field] = value
    for field in wanted:  # this side's values are the baseline for convergence next time
        value = profile_value(contact, field)
        if value is not None:
            ctx.state.set_known(side, field, value)
    if not updates:
        return
    if target == "intercom" and "intercom" not in ctx.state.members:
        ctx.note("sync", "no_action", "the customer has no Intercom contact to update")
        return
    ctx.emit_here(
        target,
        EntityType.CONTACT,
        CommandAction.UPDATE if target in ctx.state.members else CommandAction.UPSERT,
        _profile(contact, updates),
        changed_fields=sorted(updates),
        contact=contact,
        reason=f"{side} profile changed: {', '.join(sorted(updates))}",
    )


def _profile(contact: Contact, updates: dict[str, Any]) -> Contact:
    """The contact as the target should hold it: identity fields plus the changed fields."""
    custom = {
        k.split(".", 1)[1]: v for k, v in updates.items() if k.startswith("custom_attributes.")
    }
    plain = {k: v for k, v in updates.items() if not k.startswith("custom_attributes.")}
    return Contact(
        emails=contact.emails,
        external_id=contact.external_id,
        custom_attributes=custom,
        **plain,
    )
