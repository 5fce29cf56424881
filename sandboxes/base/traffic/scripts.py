"""What happens in each scenario: its steps, their wording and the human delays between them.

A script is a tuple of :class:`~.model.Action` values drawn from one generator, so it is
inspected and tested as data. Delays are simulated seconds: customers type for a minute,
agents pick a conversation up after minutes, the AI agent answers within seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sandboxes.base.traffic.model import Action, Customer, Scenario, Step

__all__ = ["ATTACHMENT_BASE", "ESCALATE_TAG", "script"]

#: Where the customers' files live. The sandboxes do not fetch attachment URLs.
ATTACHMENT_BASE = "https://files.deskstream-sandbox.example"
#: The tag that sends an Intercom conversation to Zendesk (``flows.escalate_to_zendesk``).
ESCALATE_TAG = "escalate"
#: Intercom's spelling of the ``billing`` tag in the example taxonomy.
BILLING_TAG = "billing-issue"

# (subject, first message, follow-up detail)
_PROBLEMS = (
    ("CSV export fails", "Hi, the CSV export has failed with an error since yesterday.",
     "It happens for every report, even the small ones."),
    ("Cannot sign in", "I can't sign in: the page reloads after I enter my password.",
     "I tried another browser and cleared cookies, same thing."),
    ("Webhooks arrive late", "Our webhooks arrive twenty minutes late today.",
     "All our endpoints see it; yesterday it was fine."),
    ("Calendar sync stopped", "Our calendar sync stopped this morning.",
     "Nothing changed on our side, and reconnecting did not help."),
    ("API errors on orders", "Your API answers 500 for POST /orders since 9am.",
     "We have request ids in our logs if that helps."),
    ("Dashboard missing data", "Half of last week's data is missing from the dashboard.",
     "The raw events are still in the event log."),
)  # fmt: skip
_BILLING = (
    ("Charged twice", "I was charged twice for my {plan} plan this month.",
     "Here is the invoice with both charges."),
    ("VAT on invoice", "The VAT on my last invoice looks wrong for our country.",
     "I attached the invoice."),
    ("Billed after downgrade", "I downgraded but was billed for {plan} again.",
     "The receipt is attached."),
)  # fmt: skip
# (question, the AI agent's answer)
_QUESTIONS = (
    ("How do I reset my password?",
     "Go to Settings > Security > Reset password; the link arrives by email within a minute."),
    ("Where can I download my invoices?",
     "Invoices are under Billing > History; each one has a PDF download button."),
    ("Can I change my plan in the middle of the month?",
     "Yes: upgrades apply at once and are prorated; downgrades apply at the next renewal."),
    ("How do I invite a teammate?",
     "Open Team > Invite, enter their email, and pick a role; they get an invitation link."),
)  # fmt: skip
_FRUSTRATED = (
    "That doesn't help. I'd like to talk to a person, please.",
    "This is the third time I'm asking. Please get me a human.",
    "I need someone who can actually look at my account.",
)
_THANKS = ("Thanks, that worked!", "Perfect, thank you.", "Great, all sorted now.")
_ACK = (
    "Hi {first}, thanks for reaching out. I'm looking into this now.",
    "Thanks {first}, I'm checking this with the team.",
    "Hello {first}, sorry for the trouble. Let me have a look.",
)
_FIXED = (
    "We found the cause and deployed a fix; it works again now. Sorry for the hassle!",
    "This was a bug on our side, fixed as of a few minutes ago. Thanks for your patience.",
    "I've corrected it on your account; you should see the change right away.",
)
_REFUNDED = (
    "I've refunded the duplicate charge; it shows on your statement in 3-5 days.",
    "I've issued a corrected invoice and refunded the difference.",
)


def _think(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 1)


# Simulated seconds: how long each kind of person takes before the next step.
def _typing(rng: random.Random) -> float:
    return _think(rng, 20, 90)


def _pickup(rng: random.Random) -> float:
    return _think(rng, 60, 600)


def _agent(rng: random.Random) -> float:
    return _think(rng, 30, 180)


def _bot(rng: random.Random) -> float:
    return _think(rng, 1, 4)


def _escalated(c: Customer, rng: random.Random, base: str) -> list[Action]:
    subject, first, detail = rng.choice(_PROBLEMS)
    actions = [
        Action(Step.IC_START, 0, first),
        Action(Step.IC_ADMIN_REPLY, _pickup(rng), rng.choice(_ACK).format(first=c.first_name)),
        Action(Step.IC_CUSTOMER_REPLY, _typing(rng), detail),
    ]
    if rng.random() < 0.5:
        actions += [
            Action(Step.IC_ADMIN_REPLY, _agent(rng), "Could you tell me when it started?"),
            Action(Step.IC_CUSTOMER_REPLY, _typing(rng), "Around 9am our time, I think."),
        ]
    priority = (("priority", "high" if c.plan in ("premium", "enterprise") else "normal"),)
    return [
        *actions,
        Action(Step.IC_SET_PLAN, _bot(rng), details=(("plan", c.plan),)),
        Action(Step.IC_ADMIN_NOTE, _agent(rng), f"Tier 2 please: {subject.lower()}."),
        Action(Step.IC_TAG, _bot(rng), details=(("tag", ESCALATE_TAG),)),
        Action(Step.ZD_AWAIT_MIRROR),
        Action(Step.ZD_PRIORITY, _pickup(rng), details=priority),
        Action(Step.ZD_AGENT_NOTE, _agent(rng), "Reproduced; engineering confirmed the cause."),
        Action(Step.ZD_AGENT_REPLY, _agent(rng), rng.choice(_FIXED)),
        Action(Step.ZD_SOLVE, _pickup(rng)),
    ]  # fmt: skip


def _billing(c: Customer, rng: random.Random, base: str) -> list[Action]:
    _, first, detail = rng.choice(_BILLING)
    invoice = f"{base}/invoices/INV-{rng.randrange(10_000, 99_999)}.pdf"
    new_plan = c.plan if rng.random() < 0.7 else rng.choice(("free", "pro", "premium"))
    return [
        Action(Step.IC_START, 0, first.format(plan=c.plan)),
        Action(Step.IC_CUSTOMER_REPLY, _typing(rng), detail, (("attachment", invoice),)),
        Action(Step.IC_ADMIN_REPLY, _pickup(rng), rng.choice(_ACK).format(first=c.first_name)),
        Action(Step.IC_TAG, _bot(rng), details=(("tag", BILLING_TAG),)),
        Action(Step.IC_SET_PLAN, _agent(rng), details=(("plan", new_plan),)),
        Action(Step.IC_ADMIN_REPLY, _agent(rng), rng.choice(_REFUNDED)),
        Action(Step.IC_CUSTOMER_REPLY, _typing(rng), rng.choice(_THANKS)),
        Action(Step.IC_CLOSE, _agent(rng)),
    ]


def _returning(c: Customer, rng: random.Random, base: str) -> list[Action]:
    _, first, detail = rng.choice(_PROBLEMS)
    hello = f"Hi, it's {c.first_name} again, writing from my personal address. {first}"
    return [
        # Their Zendesk profile already lists both addresses: an agent added it last time.
        Action(Step.ZD_RECORD_SECONDARY),
        Action(Step.IC_START, 0, hello, (("as", "secondary"),)),
        Action(Step.IC_ADMIN_REPLY, _pickup(rng), rng.choice(_ACK).format(first=c.first_name)),
        Action(Step.IC_CUSTOMER_REPLY, _typing(rng), detail, (("as", "secondary"),)),
        Action(Step.IC_ADMIN_REPLY, _agent(rng), rng.choice(_FIXED)),
        Action(Step.IC_CLOSE, _agent(rng)),
    ]


def _zendesk_email(c: Customer, rng: random.Random, base: str) -> list[Action]:
    subject, first, detail = rng.choice(_PROBLEMS)
    priority = (("priority", "urgent" if c.plan == "enterprise" else "normal"),)
    return [
        Action(Step.ZD_OPEN_TICKET, 0, first, (("subject", subject),)),
        Action(Step.ZD_PRIORITY, _pickup(rng), details=priority),
        Action(Step.ZD_AGENT_REPLY, _agent(rng), rng.choice(_ACK).format(first=c.first_name)),
        Action(Step.ZD_REQUESTER_FOLLOW_UP, _pickup(rng), detail),
        Action(Step.ZD_AGENT_NOTE, _agent(rng), "Known issue, fix rolling out."),
        Action(Step.ZD_SOLVE, _agent(rng), rng.choice(_FIXED)),
    ]  # fmt: skip


def _ai_resolved(c: Customer, rng: random.Random, base: str) -> list[Action]:
    question, answer = rng.choice(_QUESTIONS)
    return [
        Action(Step.SC_OPEN),
        Action(Step.SC_USER_SAYS, _typing(rng), question),
        Action(Step.SC_AI_ANSWERS, _bot(rng), answer),
        Action(Step.SC_USER_SAYS, _typing(rng), rng.choice(_THANKS)),
        Action(Step.SC_AI_ANSWERS, _bot(rng), "Glad I could help! Anything else?"),
        Action(Step.SC_AI_RELEASE, _pickup(rng)),
    ]


def _sunshine_handoff(c: Customer, rng: random.Random, base: str) -> list[Action]:
    question, answer = rng.choice(_QUESTIONS)
    subject, first, detail = rng.choice(_PROBLEMS)
    reason = rng.choice(("customer_request", "negative_sentiment", "account_access"))
    summary = f"{c.name} ({c.plan}) asked: {question} Real issue: {subject.lower()}."
    hand_off = (("reason", reason), ("sentiment", "negative"), ("summary", summary))
    return [
        Action(Step.SC_OPEN),
        Action(Step.SC_USER_SAYS, _typing(rng), question),
        Action(Step.SC_AI_ANSWERS, _bot(rng), answer),
        Action(Step.SC_USER_SAYS, _typing(rng), f"{rng.choice(_FRUSTRATED)} {first}"),
        Action(Step.SC_HAND_OFF, _bot(rng), details=hand_off),
        Action(Step.SC_AGENT_REPLIES, _pickup(rng), rng.choice(_ACK).format(first=c.first_name)),
        Action(Step.SC_USER_SAYS, _typing(rng), detail),
        Action(Step.SC_AGENT_REPLIES, _agent(rng), rng.choice(_FIXED)),
        Action(Step.SC_AGENT_RELEASE, _agent(rng)),
    ]


def _salesforce_case(c: Customer, rng: random.Random, base: str) -> list[Action]:
    subject, first, detail = rng.choice(_PROBLEMS)
    priority = {"enterprise": "High", "premium": "High", "pro": "Medium"}.get(c.plan, "Low")
    details = (("subject", subject), ("priority", priority), ("origin", "Phone"))
    internal = (("published", "false"),)
    return [
        Action(Step.SF_CASE, 0, f"{first} {detail}", details),
        Action(Step.SF_STATUS, _pickup(rng), details=(("status", "Working"),)),
        Action(Step.SF_COMMENT, _agent(rng), "Called the customer, reproduced.", internal),
        Action(Step.SF_COMMENT, _agent(rng), rng.choice(_FIXED), (("published", "true"),)),
        Action(Step.SF_STATUS, _agent(rng), details=(("status", "Closed"),)),
    ]  # fmt: skip


_SCRIPTS: dict[Scenario, Callable[[Customer, random.Random, str], list[Action]]] = {
    Scenario.AI_RESOLVED: _ai_resolved,
    Scenario.ESCALATED: _escalated,
    Scenario.BILLING: _billing,
    Scenario.RETURNING: _returning,
    Scenario.ZENDESK_EMAIL: _zendesk_email,
    Scenario.SUNSHINE_HANDOFF: _sunshine_handoff,
    Scenario.SALESFORCE_CASE: _salesforce_case,
}


def script(
    scenario: Scenario, customer: Customer, rng: random.Random, attachment_base: str
) -> tuple[Action, ...]:
    """The steps of one conversation of ``scenario`` for ``customer``."""
    return tuple(_SCRIPTS[scenario](customer, rng, attachment_base.rstrip("/")))
