"""Slow-moving signals: rent and council-tax arrears balances, and school attendance.

These evolve every week from the hidden state (they rise while a household struggles, and an open
key-worker case slows that) and are reported on the agencies' own schedules: arrears balances on
monthly statements, absence as sessions missed per school term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.city._calendar import academic_year
from experiments.city._draws import Draws
from experiments.city._events import EVENT_NAMES, EventBatch, event_batch
from experiments.city._population import DOMAINS, Population

# Chance of missing a week's rent / a council-tax instalment, by tier.
RENT_MISS: tuple[float, float, float, float] = (0.008, 0.03, 0.10, 0.22)
COUNCIL_TAX_MISS: tuple[float, float, float, float] = (0.006, 0.03, 0.10, 0.22)
# Absence and exclusion multipliers by tier, on each child's own absence propensity.
ABSENCE_BY_TIER: tuple[float, float, float, float] = (1.0, 1.25, 1.8, 2.6)
EXCLUSION_BY_TIER: tuple[float, float, float, float] = (0.0001, 0.0002, 0.0006, 0.0015)
SCHOOL_AGES = (5, 16)  # academic year of the week minus birth year
# Schools share the pupils whose attendance in the term fell below 95%.
ABSENCE_REPORT_SHARE = 0.05
# Rent arrears of more than this many weeks' rent put a social tenancy at risk of a notice.
NOTICE_ARREARS_WEEKS = 6.0
NOTICE_WEEKLY_CHANCE = 0.025


@dataclass
class SchoolLedger:
    """Each person's attendance this term (only school-age children ever accumulate)."""

    propensity: np.ndarray
    missed: np.ndarray
    possible: np.ndarray


def struggle_multiplier(
    population: Population, *, acute: np.ndarray, case: np.ndarray, case_effect: float
) -> np.ndarray:
    """How much faster arrears grow than the tier alone suggests: debt needs, an acute episode;
    an open key-worker case slows it by case_effect."""
    debt = population.domains[:, DOMAINS.index("debt")]
    return (1.0 + 0.8 * debt) * np.where(acute, 1.5, 1.0) * (1.0 - case_effect * case)


def update_rent_arrears(
    draws: Draws,
    population: Population,
    *,
    balance: np.ndarray,
    tier: np.ndarray,
    struggle: np.ndarray,
) -> np.ndarray:
    """Next week's rent arrears of social tenants: a missed week adds rent, otherwise repay."""
    households = np.arange(population.size)
    chance = np.minimum(np.array(RENT_MISS)[tier] * struggle, 0.95)
    missed = draws.random(households, stream="rent_missed") < chance
    amount = draws.random(households, stream="rent_amount")
    rent = population.weekly_rent
    grown = balance + rent * (0.3 + 0.7 * amount)
    repaid = np.maximum(balance - rent * 0.3 * amount, 0.0)
    return np.round(np.where(missed, grown, repaid), 2)


def update_council_tax_arrears(
    draws: Draws,
    population: Population,
    *,
    balance: np.ndarray,
    tier: np.ndarray,
    struggle: np.ndarray,
) -> np.ndarray:
    """Council-tax arrears after an instalment falls due: missed, or paid with some catch-up."""
    chance = np.minimum(np.array(COUNCIL_TAX_MISS)[tier] * struggle, 0.95)
    households = np.arange(population.size)
    missed = draws.random(households, stream="council_tax_missed") < chance
    instalment = population.council_tax_instalment
    catch_up = instalment * (0.3 + 0.7 * draws.random(households, stream="council_tax_amount"))
    repaid = np.maximum(balance - catch_up, 0.0)
    return np.round(np.where(missed, balance + instalment, repaid), 2)


def arrears_statements(
    *, rent_balance: np.ndarray, council_tax_balance: np.ndarray, day: int
) -> EventBatch:
    """Month-end statements: one row per household in arrears, valued at its balance."""
    rent = np.flatnonzero(rent_balance >= 0.01)
    council_tax = np.flatnonzero(council_tax_balance >= 0.01)
    return event_batch(
        household=np.concatenate([rent, council_tax]),
        kind=np.concatenate(
            [
                np.full(len(rent), EVENT_NAMES.index("rent_arrears")),
                np.full(len(council_tax), EVENT_NAMES.index("council_tax_arrears")),
            ]
        ),
        occurred=day,
        value=np.concatenate([rent_balance[rent], council_tax_balance[council_tax]]),
    )


def arrears_notices(
    draws: Draws,
    population: Population,
    *,
    rent_balance: np.ndarray,
    first_day: int,
) -> EventBatch:
    """Eviction notices the council's housing service serves on tenants deep in arrears."""
    deep = rent_balance > NOTICE_ARREARS_WEEKS * population.weekly_rent
    chance = draws.random(np.arange(population.size), stream="notice_served")
    served = np.flatnonzero(deep & (chance < NOTICE_WEEKLY_CHANCE))
    occurred = first_day + draws.integers(7, served, stream="notice_day")
    return event_batch(
        household=served, kind=EVENT_NAMES.index("eviction_notice"), occurred=occurred
    )


def new_school_ledger(rng: np.random.Generator, population: Population) -> SchoolLedger:
    """Every person's own tendency to miss school (about 5% of sessions on average)."""
    people = len(population.person_id)
    return SchoolLedger(
        propensity=rng.beta(1.5, 30.0, size=people),
        missed=np.zeros(people, dtype=np.int64),
        possible=np.zeros(people, dtype=np.int64),
    )


def attend_school(
    draws: Draws,
    population: Population,
    ledger: SchoolLedger,
    *,
    school_days: np.ndarray,
    tier: np.ndarray,
    acute: np.ndarray,
    case: np.ndarray,
    case_effect: float,
) -> EventBatch:
    """A school week for every school-age child: sessions missed, and any exclusions."""
    year = academic_year(school_days[:1])[0]
    age = year - population.person_birth_year
    pupils = np.flatnonzero((age >= SCHOOL_AGES[0]) & (age <= SCHOOL_AGES[1]))
    household = population.person_household[pupils]
    parenting = population.domains[household, DOMAINS.index("parenting")]
    pressure = (
        np.array(ABSENCE_BY_TIER)[tier[household]]
        * np.where(acute[household], 1.6, 1.0)
        * np.where(parenting, 1.4, 1.0)
        * (1.0 - case_effect * case[household])
    )
    sessions = 2 * len(school_days)
    ledger.missed[pupils] += draws.binomial(
        sessions,
        np.minimum(ledger.propensity[pupils] * pressure, 0.95),
        pupils,
        stream="school_missed",
    )
    ledger.possible[pupils] += sessions
    offending = population.domains[household, DOMAINS.index("offending")]
    exclusion = (
        np.array(EXCLUSION_BY_TIER)[tier[household]]
        * np.where(acute[household], 3.0, 1.0)
        * np.where(offending, 2.0, 1.0)
        * len(school_days)
    )
    excluded = draws.random(pupils, stream="school_excluded") < exclusion
    occurred = school_days[
        draws.integers(len(school_days), pupils[excluded], stream="school_exclusion_day")
    ]
    return event_batch(
        household=household[excluded],
        person=pupils[excluded],
        kind=EVENT_NAMES.index("school_exclusion"),
        occurred=occurred,
    )


def absence_reports(ledger: SchoolLedger, population: Population, *, day: int) -> EventBatch:
    """End-of-term attendance returns; the ledger starts the next term empty."""
    reported = np.flatnonzero(
        (ledger.missed >= 1) & (ledger.missed >= ABSENCE_REPORT_SHARE * ledger.possible)
    )
    batch = event_batch(
        household=population.person_household[reported],
        person=reported,
        kind=EVENT_NAMES.index("school_absence"),
        occurred=day,
        value=ledger.missed[reported].astype(float),
    )
    ledger.missed[:] = 0
    ledger.possible[:] = 0
    return batch
