"""What agencies record about a household in a week, given its hidden state.

Incidents (police call-outs, A&E attendances, ...) are Poisson counts whose weekly rate depends on
the household's tier, acute episode and open case (the state table) and on fixed household facts
(its need domains, who lives there). Crises come from the hidden chain's crisis draw; their type
fits the household. Every event gets a person where it is about one, and a reporting lag in the
pattern of its agency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.city._calendar import calendar_year, next_month_start
from experiments.city._draws import Draws
from experiments.city._dynamics import STATES, NeedDynamics
from experiments.city._population import DOMAINS, NOT_A_MEMBER, Population
from features.contract import CRISIS_EVENT_TYPES, EVENT_TYPES, TENURES

EVENT_NAMES: tuple[str, ...] = tuple(EVENT_TYPES)
NO_PERSON = -1
SLOTS_PER_KIND = 4096  # keyed draws tell apart this many events of one type per household

# Weekly rate per household by tier (0-3) before household factors, and the multiplier while the
# household is in an acute episode. An open case damps anti-social behaviour like crises.
# Visibility: households that need help are seen by agencies long before a crisis (Stoke's "red
# flags not seen or heard"): a "could go either way" household has about 8 recorded contacts a
# year across agencies, one needing specialist help about 20, one living well with minor problems
# about 3.
# At a third of these rates the need tier was too faint in the records for any model to recover
# (docs/synthetic-city.md, "Visibility").
INCIDENT_RATES: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "police_callout": ((0.0006, 0.0075, 0.024, 0.066), 4.0),
    "asb_report": ((0.0004, 0.0045, 0.015, 0.036), 3.0),
    "domestic_abuse_incident": ((0.0, 0.009, 0.03, 0.075), 4.0),
    "missing_person": ((0.0, 0.0015, 0.006, 0.024), 3.0),
    "fire_callout": ((0.0003, 0.0015, 0.003, 0.006), 2.0),
    "ae_attendance": ((0.004, 0.018, 0.03, 0.054), 2.5),
    "unemployment_claim": ((0.0008, 0.006, 0.012, 0.012), 1.0),
    "benefit_sanction": ((0.0001, 0.0018, 0.006, 0.012), 1.5),
    "social_care_contact": ((0.0002, 0.003, 0.015, 0.054), 2.0),
    "probation_breach": ((0.0, 0.003, 0.012, 0.036), 2.0),
    "eviction_notice": ((0.0002, 0.0024, 0.006, 0.012), 1.5),
}
INCIDENT_TYPES: tuple[str, ...] = tuple(INCIDENT_RATES)
CASE_DAMPED: tuple[str, ...] = ("asb_report",)

# Who an event is about: (youngest, oldest) age allowed, then a fallback range; events not listed
# are about the household as a whole (person_id empty).
PERSON_RULES: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "domestic_abuse_incident": ((18, 120), None),
    "missing_person": ((10, 17), (18, 120)),
    "ae_attendance": ((0, 120), None),
    "unemployment_claim": ((18, 66), (18, 120)),
    "benefit_sanction": ((18, 66), (18, 120)),
    "social_care_contact": ((0, 17), (18, 120)),
    "probation_breach": ((18, 120), None),
    "arrest": ((15, 70), (18, 120)),
    "emergency_admission": ((0, 120), None),
    "mental_health_crisis": ((12, 120), None),
    "child_protection_plan": ((0, 17), None),
    "child_taken_into_care": ((0, 17), None),
}

# Reporting lag rules: ("days", first, last) uniform, ("geometric", p, cap) days after the event,
# ("monthly", first, last): a batch sent first..last days into the following month.
LAG_RULES: dict[str, tuple[str, float, float]] = {
    "rent_arrears": ("days", 2, 6),
    "council_tax_arrears": ("days", 8, 14),
    "eviction_notice": ("geometric", 0.2, 30),
    "possession_order": ("geometric", 0.2, 30),
    "homelessness_presentation": ("geometric", 0.3, 21),
    "asb_report": ("geometric", 0.35, 28),
    "domestic_abuse_incident": ("geometric", 0.35, 28),
    "police_callout": ("geometric", 0.35, 28),
    "arrest": ("geometric", 0.5, 14),
    "missing_person": ("geometric", 0.5, 14),
    "fire_callout": ("geometric", 0.12, 60),
    "deliberate_fire": ("geometric", 0.12, 60),
    "school_absence": ("days", 14, 35),
    "school_exclusion": ("days", 7, 42),
    "ae_attendance": ("days", 7, 21),
    "emergency_admission": ("days", 7, 21),
    "mental_health_crisis": ("days", 7, 21),
    "benefit_sanction": ("monthly", 9, 15),
    "unemployment_claim": ("monthly", 9, 15),
    "social_care_contact": ("geometric", 0.4, 21),
    "child_protection_plan": ("geometric", 0.4, 21),
    "child_taken_into_care": ("geometric", 0.5, 14),
    "probation_breach": ("geometric", 0.2, 35),
}


@dataclass(frozen=True)
class EventBatch:
    """Events as parallel arrays (kind indexes EVENT_NAMES; day numbers; value NaN if none)."""

    household: np.ndarray
    person: np.ndarray
    kind: np.ndarray
    occurred: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.household)


def event_batch(
    *,
    household: np.ndarray,
    kind: np.ndarray | int,
    occurred: np.ndarray | int,
    person: np.ndarray | None = None,
    value: np.ndarray | None = None,
) -> EventBatch:
    """An EventBatch, broadcasting a single kind or day and defaulting to no person/value."""
    household = np.asarray(household, dtype=np.int64)
    count = len(household)
    return EventBatch(
        household=household,
        person=np.full(count, NO_PERSON) if person is None else np.asarray(person, np.int64),
        kind=np.broadcast_to(np.asarray(kind, dtype=np.int64), count).copy(),
        occurred=np.broadcast_to(np.asarray(occurred, dtype=np.int64), count).copy(),
        value=np.full(count, np.nan) if value is None else np.asarray(value, dtype=float),
    )


def concat_batches(batches: list[EventBatch]) -> EventBatch:
    """One batch holding all events of the given batches, in order."""
    if not batches:
        return event_batch(household=np.zeros(0, dtype=np.int64), kind=0, occurred=0)
    return EventBatch(
        **{
            name: np.concatenate([getattr(batch, name) for batch in batches])
            for name in ("household", "person", "kind", "occurred", "value")
        }
    )


def select_batch(batch: EventBatch, keep: np.ndarray) -> EventBatch:
    """The events of batch at positions (or where the mask is true) keep."""
    return EventBatch(
        **{
            name: getattr(batch, name)[keep]
            for name in ("household", "person", "kind", "occurred", "value")
        }
    )


def _domain(population: Population, name: str) -> np.ndarray:
    return population.domains[:, DOMAINS.index(name)].astype(float)


def has_children(population: Population) -> np.ndarray:
    """Households with at least one member who is a child at some point in the simulation."""
    births = population.member_birth_year
    return ((births != NOT_A_MEMBER) & (births > population.reference_year - 18)).any(axis=1)


def incident_household_factors(population: Population) -> np.ndarray:
    """(households, INCIDENT_TYPES): how much more often than typical each incident happens."""
    offending, abuse = _domain(population, "offending"), _domain(population, "domestic_abuse")
    substance, parenting = _domain(population, "substance_misuse"), _domain(population, "parenting")
    debt, mental = _domain(population, "debt"), _domain(population, "mental_health")
    children = has_children(population)
    disabled = population.disabled_member.astype(float)
    owner = population.tenure == TENURES.index("owner")
    social = np.isin(
        population.tenure, [TENURES.index(n) for n in ("council", "housing_association")]
    )
    members = (population.member_birth_year != NOT_A_MEMBER).sum(axis=1)
    factors = {
        "police_callout": 1.0 + offending + 0.8 * abuse + 0.6 * substance,
        "asb_report": (0.3 + 2.0 * offending + 0.5 * substance) * np.where(social, 1.3, 1.0),
        "domestic_abuse_incident": 0.1 + 0.9 * abuse,
        "missing_person": np.where(children, 1.0, 0.2) * (1.0 + offending + parenting),
        "fire_callout": 1.0 + 0.5 * substance,
        "ae_attendance": members / 2.4 * (1.0 + 0.5 * disabled + 0.5 * substance + 0.3 * mental),
        "unemployment_claim": np.where(owner, 0.5, 1.0) * (1.0 + 0.5 * debt),
        "benefit_sanction": np.where(owner, 0.2, 1.0) * (1.0 + debt + substance),
        "social_care_contact": np.where(children, 1.5, 0.6)
        * (1.0 + abuse + parenting + substance)
        * (1.0 + 0.5 * disabled),
        "probation_breach": offending,
        "eviction_notice": (population.tenure == TENURES.index("private_rent")).astype(float),
    }
    return np.column_stack([factors[name] for name in INCIDENT_TYPES])


def incident_state_multipliers(dynamics: NeedDynamics) -> np.ndarray:
    """(INCIDENT_TYPES, 16): weekly rate of each incident in each hidden state."""
    code = np.arange(STATES)
    tier, acute, case = code // 4, (code // 2) % 2, code % 2
    rows = []
    for name in INCIDENT_TYPES:
        by_tier, acute_multiplier = INCIDENT_RATES[name]
        damping = 1.0 - dynamics.case_effect * case * (name in CASE_DAMPED)
        rows.append(np.array(by_tier)[tier] * np.where(acute, acute_multiplier, 1.0) * damping)
    return np.array(rows)


def draw_incidents(
    draws: Draws,
    *,
    factors: np.ndarray,
    multipliers: np.ndarray,
    totals: np.ndarray,
    state: np.ndarray,
    first_day: int,
) -> EventBatch:
    """This week's incidents: a Poisson count per household, then a type for each one."""
    counts = draws.poisson(totals[np.arange(len(state)), state], stream="incident_count")
    household = np.repeat(np.flatnonzero(counts), counts[counts > 0])
    slot = np.arange(len(household)) - np.repeat(np.cumsum(counts) - counts, counts)
    weights = factors[household] * multipliers[:, state[household]].T
    cumulative = np.cumsum(weights, axis=1)
    draw = draws.random(household, stream="incident_kind", slots=slot) * cumulative[:, -1]
    chosen = np.minimum((cumulative < draw[:, None]).sum(axis=1), len(INCIDENT_TYPES) - 1)
    kind = np.array([EVENT_NAMES.index(name) for name in INCIDENT_TYPES])[chosen]
    occurred = first_day + draws.integers(7, household, stream="incident_day", slots=slot)
    return event_batch(household=household, kind=kind, occurred=occurred)


def _crisis_weights(
    population: Population,
    households: np.ndarray,
    *,
    tier: np.ndarray,
    rent_arrears: np.ndarray,
    child_now: np.ndarray,
) -> np.ndarray:
    """(crisis households, CRISIS_EVENT_TYPES) relative chance of each kind of crisis."""
    tenure = population.tenure[households]
    domain = {name: population.domains[households, DOMAINS.index(name)] for name in DOMAINS}
    social = np.isin(
        tenure, [TENURES.index(n) for n in ("council", "housing_association", "temporary")]
    )
    rent = np.maximum(population.weekly_rent[households], 1.0)
    homeless = np.array([0.2, 0.2, 1.0, 0.05, 1.5, 0.5])[tenure]
    private = tenure == TENURES.index("private_rent")
    weights = {
        "possession_order": np.where(social, 0.5 * (1 + rent_arrears / (4 * rent)), 0.0)
        + np.where(private, 0.5 * (1 + domain["debt"]), 0.0),
        "homelessness_presentation": homeless * (1 + domain["domestic_abuse"]),
        "arrest": 0.3 + 1.5 * domain["offending"] + 0.5 * domain["substance_misuse"],
        "deliberate_fire": 0.04 + 0.12 * domain["offending"],
        "emergency_admission": 1.0 + 0.5 * domain["substance_misuse"],
        "mental_health_crisis": 0.3
        + 1.5 * domain["mental_health"]
        + 0.5 * domain["substance_misuse"],
        "child_protection_plan": child_now
        * (
            0.3
            + 1.2 * domain["domestic_abuse"]
            + domain["parenting"]
            + 0.6 * domain["substance_misuse"]
        ),
        "child_taken_into_care": child_now * (tier == 3) * (0.05 + 0.3 * domain["parenting"]),
    }
    return np.column_stack([weights[name] for name in CRISIS_EVENT_TYPES])


def draw_crises(
    draws: Draws,
    population: Population,
    *,
    households: np.ndarray,
    tier: np.ndarray,
    rent_arrears: np.ndarray,
    first_day: int,
) -> EventBatch:
    """One crisis event for each household whose hidden crisis draw came up this week."""
    occurred = first_day + draws.integers(7, households, stream="crisis_day")
    year = calendar_year(occurred)
    child_now = member_count(population, households, year=year, ages=(0, 17)) > 0
    weights = _crisis_weights(
        population, households, tier=tier, rent_arrears=rent_arrears, child_now=child_now
    )
    cumulative = np.cumsum(weights, axis=1)
    draw = draws.random(households, stream="crisis_kind") * cumulative[:, -1]
    chosen = np.minimum((cumulative < draw[:, None]).sum(axis=1), len(CRISIS_EVENT_TYPES) - 1)
    kind = np.array([EVENT_NAMES.index(name) for name in CRISIS_EVENT_TYPES])[chosen]
    return event_batch(household=households, kind=kind, occurred=occurred)


def member_count(
    population: Population, households: np.ndarray, *, year: np.ndarray, ages: tuple[int, int]
) -> np.ndarray:
    """How many members of each household are aged ages[0]..ages[1] in the given year."""
    births = population.member_birth_year[households]
    year = np.asarray(year)[:, None]
    return ((births >= year - ages[1]) & (births <= year - ages[0])).sum(axis=1)


def pick_member(
    population: Population,
    households: np.ndarray,
    *,
    year: np.ndarray,
    ages: tuple[int, int],
    draw: np.ndarray,
) -> np.ndarray:
    """A random member aged ages[0]..ages[1] in year (person row), or NO_PERSON if none."""
    births = population.member_birth_year[households]
    year = np.asarray(year)
    low = (births < (year - ages[1])[:, None]).sum(axis=1)
    high = (births <= (year - ages[0])[:, None]).sum(axis=1)
    offset = low + np.floor(draw * (high - low)).astype(np.int64)
    return np.where(high > low, population.first_person[households] + offset, NO_PERSON)


def event_slots(batch: EventBatch) -> np.ndarray:
    """A key for each event among its household's: its type and its place among the household's
    events of that type in the batch (what keyed draws tell events apart by)."""
    order = np.lexsort((batch.kind, batch.household))
    household, kind = batch.household[order], batch.kind[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (household[1:] != household[:-1]) | (kind[1:] != kind[:-1])
    starts = np.flatnonzero(first)
    place = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    slots = np.empty(len(order), dtype=np.int64)
    slots[order] = kind * SLOTS_PER_KIND + np.minimum(place, SLOTS_PER_KIND - 1)
    return slots


def assign_people(draws: Draws, population: Population, batch: EventBatch) -> EventBatch:
    """The batch with person set where the event type is about one person."""
    person = batch.person.copy()
    year = calendar_year(batch.occurred)
    draw = draws.random(batch.household, stream="event_person", slots=event_slots(batch))
    for name, (ages, fallback) in PERSON_RULES.items():
        rows = np.flatnonzero((batch.kind == EVENT_NAMES.index(name)) & (person == NO_PERSON))
        for allowed in (ages, fallback):
            if allowed is None or not len(rows):
                continue
            chosen = pick_member(
                population, batch.household[rows], year=year[rows], ages=allowed, draw=draw[rows]
            )
            person[rows] = chosen
            rows = rows[chosen == NO_PERSON]
    return EventBatch(
        household=batch.household,
        person=person,
        kind=batch.kind,
        occurred=batch.occurred,
        value=batch.value,
    )


def reporting_days(draws: Draws, batch: EventBatch) -> np.ndarray:
    """The day each event becomes known to the extract (never before it occurred)."""
    known = batch.occurred.copy()
    draw = draws.random(batch.household, stream="event_reported", slots=event_slots(batch))
    for name, (rule, first, last) in LAG_RULES.items():
        rows = batch.kind == EVENT_NAMES.index(name)
        if rule == "days":
            known[rows] += int(first) + np.floor(draw[rows] * (last - first + 1)).astype(np.int64)
        elif rule == "geometric":
            lag = np.ceil(np.log1p(-draw[rows]) / np.log1p(-first)).astype(np.int64)
            known[rows] += np.clip(lag, 1, int(last))
        else:
            spread = np.floor(draw[rows] * (last - first + 1)).astype(np.int64)
            known[rows] = next_month_start(batch.occurred[rows]) + int(first) - 1 + spread
    return known
