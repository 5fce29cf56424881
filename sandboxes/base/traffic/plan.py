"""A contact center's day as plain data: when conversations arrive and what happens in each.

No I/O and no clock: one seed gives one day, so the schedule is tested with plain values and
replayed exactly. Arrivals follow a Poisson process (exponential gaps at ``rate`` per second)
until ``duration``; each draws a :class:`~.model.Scenario` by weight, a customer (one with a
second address for the returning-customer scenario) and its script. Scripts draw from their
own generator per arrival, so rewording one script never moves another arrival in time.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping

from sandboxes.base.traffic.model import (
    DEFAULT_WEIGHTS,
    SCENARIO_PLATFORMS,
    Arrival,
    Day,
    Scenario,
    make_population,
)
from sandboxes.base.traffic.scripts import ATTACHMENT_BASE, script

__all__ = ["plan_day", "scenario_weights"]


def scenario_weights(
    weights: Mapping[Scenario, float] | None, platforms: Collection[str] | None
) -> dict[Scenario, float]:
    """The weights to draw from: scenarios whose platforms are all served, weight > 0."""
    chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if any(w < 0 for w in chosen.values()):
        raise ValueError("scenario weights cannot be negative")
    if platforms is not None:
        served = set(platforms)
        chosen = {s: w for s, w in chosen.items() if SCENARIO_PLATFORMS[s] <= served}
    chosen = {s: w for s, w in chosen.items() if w > 0}
    if not chosen:
        raise ValueError("no scenario can run on the chosen platforms with these weights")
    return chosen


def plan_day(
    *,
    seed: int,
    rate: float,
    duration: float,
    population: int = 200,
    weights: Mapping[Scenario, float] | None = None,
    platforms: Collection[str] | None = None,
    attachment_base: str = ATTACHMENT_BASE,
) -> Day:
    """Every arrival of a run: Poisson at ``rate``/s over ``duration`` s, all from ``seed``."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    people = make_population(random.Random(f"{seed}:population"), population)  # noqa: S311
    returning = [c for c in people if c.secondary_email] or list(people)
    chosen = scenario_weights(weights, platforms)
    scenarios, odds = list(chosen), list(chosen.values())
    rng = random.Random(f"{seed}:arrivals")  # noqa: S311 - simulation, not crypto
    arrivals: list[Arrival] = []
    at = rng.expovariate(rate)
    while at < duration:
        scenario = rng.choices(scenarios, odds)[0]
        pool = returning if scenario is Scenario.RETURNING else people
        customer = pool[rng.randrange(len(pool))]
        index = len(arrivals)
        script_rng = random.Random(f"{seed}:script:{index}")  # noqa: S311
        actions = script(scenario, customer, script_rng, attachment_base)
        arrivals.append(Arrival(index, round(at, 6), scenario, customer, actions))
        at += rng.expovariate(rate)
    return Day(people, tuple(arrivals))
