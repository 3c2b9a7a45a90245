"""The hidden weekly need state of every household and its exact escalation probability.

Each household is, each week, in one of 16 states: a need tier (0-3), whether it is in an acute
episode, and whether it has an open key-worker case. Next week's tier, acute flag and case status
are drawn independently given this week's state, with household-specific rates, and a crisis
happens this week with a probability that depends only on this week's state. The chain is
time-homogeneous per household, so the probability of no crisis in the next H weeks from every
state can be computed exactly by backward recursion (`survival`), which is where `p_true` comes
from. (Arrears, school absence and everything agencies record are driven by the state but never
feed back into it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIER_NAMES: tuple[str, ...] = (
    "no_current_needs",
    "living_well_with_minor_problems",
    "could_go_either_way",
    "needs_specialist_long_term_help",
)
TIERS = len(TIER_NAMES)
STATES = TIERS * 2 * 2  # tier x acute x case


@dataclass(frozen=True)
class NeedDynamics:
    """Weekly probabilities of the hidden chain (for a household with propensity 0).

    A household's upward tier moves scale with exp(propensity_up * propensity) and downward moves
    with exp(-propensity_down * propensity); its crisis probabilities scale with its crisis
    multiplier. An open key-worker case multiplies the crisis probability by (1 - case_effect) and
    downward tier moves by (1 + case_recovery).
    """

    tier_up: tuple[float, float, float] = (0.0104, 0.0104, 0.00107)
    tier_down: tuple[float, float, float] = (0.0200, 0.0300, 0.0150)
    acute_onset: tuple[float, float, float, float] = (0.002, 0.006, 0.020, 0.050)
    acute_recovery: float = 0.15
    crisis: tuple[float, float, float, float] = (0.0003, 0.001, 0.0044, 0.019)
    crisis_acute_multiplier: float = 4.0
    case_close: tuple[float, float, float, float] = (0.12, 0.06, 0.025, 0.015)
    moved_away: float = 0.002
    referral: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.02, 0.1), (0.15, 0.5), (0.6, 1.0))
    case_effect: float = 0.2
    case_recovery: float = 0.25
    propensity_up: float = 0.7
    propensity_down: float = 0.3


@dataclass(frozen=True)
class HouseholdRates:
    """Per-household weekly rates derived from NeedDynamics and the household's propensity."""

    dynamics: NeedDynamics
    up: np.ndarray
    down: np.ndarray
    onset: np.ndarray
    crisis: np.ndarray


@dataclass(frozen=True)
class Transition:
    """For each household, given its current state: what can happen this week and next."""

    crisis: np.ndarray
    up: np.ndarray
    down: np.ndarray
    acute_next: np.ndarray
    close: np.ndarray
    move: np.ndarray
    refer: np.ndarray


def state_code(tier: np.ndarray, acute: np.ndarray, case: np.ndarray) -> np.ndarray:
    """The 0-15 index of (tier, acute, case)."""
    return np.asarray(tier) * 4 + np.asarray(acute, dtype=np.int64) * 2 + np.asarray(case)


def household_rates(
    dynamics: NeedDynamics, *, propensity: np.ndarray, crisis_multiplier: np.ndarray
) -> HouseholdRates:
    """Rates for every household from its hidden propensity and crisis multiplier."""
    propensity = np.asarray(propensity)[:, None]
    return HouseholdRates(
        dynamics=dynamics,
        up=np.array(dynamics.tier_up)[None, :] * np.exp(dynamics.propensity_up * propensity),
        down=np.array(dynamics.tier_down)[None, :] * np.exp(-dynamics.propensity_down * propensity),
        onset=np.array(dynamics.acute_onset)[None, :] * np.exp(0.5 * propensity),
        crisis=np.array(dynamics.crisis)[None, :] * crisis_multiplier[:, None],
    )


def transition(
    rates: HouseholdRates,
    *,
    tier: np.ndarray,
    acute: np.ndarray,
    case: np.ndarray,
    referral_scale: float,
) -> Transition:
    """This week's crisis probability and next week's move probabilities for every household."""
    dynamics = rates.dynamics
    row = np.arange(len(rates.up))
    up = np.where(tier < TIERS - 1, rates.up[row, np.minimum(tier, TIERS - 2)], 0.0)
    recovery = 1.0 + dynamics.case_recovery * case
    down = np.where(tier > 0, rates.down[row, np.maximum(tier - 1, 0)] * recovery, 0.0)
    moving = up + down
    squeeze = np.where(moving > 0.9, 0.9 / np.maximum(moving, 1e-12), 1.0)
    crisis = rates.crisis[row, tier] * np.where(acute, dynamics.crisis_acute_multiplier, 1.0)
    referral = np.array(dynamics.referral)[tier, np.asarray(acute, dtype=np.int64)]
    return Transition(
        crisis=np.minimum(crisis * (1.0 - dynamics.case_effect * case), 0.95),
        up=up * squeeze,
        down=down * squeeze,
        acute_next=np.where(acute, 1.0 - dynamics.acute_recovery, rates.onset[row, tier]),
        close=np.where(case, np.array(dynamics.case_close)[tier], 0.0),
        move=np.where(case, dynamics.moved_away, 0.0),
        refer=np.where(case, 0.0, np.minimum(referral_scale * referral, 0.9)),
    )


def _state_transitions(rates: HouseholdRates, referral_scale: float) -> list[Transition]:
    """The Transition of every household from each of the 16 states, in state_code order."""
    households = len(rates.up)
    transitions = []
    for code in range(STATES):
        tier, acute, case = code // 4, (code // 2) % 2, code % 2
        transitions.append(
            transition(
                rates,
                tier=np.full(households, tier),
                acute=np.full(households, bool(acute)),
                case=np.full(households, case),
                referral_scale=referral_scale,
            )
        )
    return transitions


def survival(rates: HouseholdRates, *, horizon_weeks: int, referral_scale: float) -> np.ndarray:
    """(households, 16): probability of no crisis in the next horizon_weeks from each state.

    Exact backward recursion over the chain: V_k(s) = (1 - crisis(s)) * sum_s' P(s, s') V_{k-1}(s').
    """
    return _backward(
        rates,
        horizon_weeks=horizon_weeks,
        referral_scale=referral_scale,
        start=1.0,
        step=lambda crisis, ahead: (1.0 - crisis) * ahead,
    )


def crises_ahead(rates: HouseholdRates, *, horizon_weeks: int, referral_scale: float) -> np.ndarray:
    """(households, 16): expected number of crises in the next horizon_weeks from each state.

    Exact backward recursion: E_k(s) = crisis(s) + sum_s' P(s, s') E_{k-1}(s'), since this week's
    crisis draw does not move the chain. (The simulator also ends an open case when a child
    protection crisis hands it to children's social care, which the chain leaves out.)
    """
    return _backward(
        rates,
        horizon_weeks=horizon_weeks,
        referral_scale=referral_scale,
        start=0.0,
        step=lambda crisis, ahead: crisis + ahead,
    )


def _backward(
    rates: HouseholdRates, *, horizon_weeks: int, referral_scale: float, start: float, step
) -> np.ndarray:
    """V_k(s) = step(crisis(s), sum_s' P(s, s') V_{k-1}(s')), V_0 = start, for every household.

    Households are done in blocks to bound the memory of their transition matrices.
    """
    households = len(rates.up)
    values = np.empty((households, STATES))
    for first in range(0, households, 20_000):
        rows = np.arange(first, min(first + 20_000, households))
        block = _subset(rates, rows)
        matrices = _transition_matrices(block, referral_scale)
        crisis = np.column_stack(
            [moves.crisis for moves in _state_transitions(block, referral_scale)]
        )[:, :, None]
        value = np.full((len(rows), STATES, 1), start)
        for _ in range(horizon_weeks):
            value = step(crisis, np.matmul(matrices, value))
        values[rows] = value[:, :, 0]
    return values


def stationary_tiers(rates: HouseholdRates) -> np.ndarray:
    """(households, 4): each household's long-run tier distribution without a key worker.

    The tier chain is a birth-death chain, so detailed balance gives it exactly.
    """
    households = len(rates.up)
    weights = np.ones((households, TIERS))
    for tier in range(1, TIERS):
        weights[:, tier] = weights[:, tier - 1] * rates.up[:, tier - 1] / rates.down[:, tier - 1]
    return weights / weights.sum(axis=1, keepdims=True)


def acute_share(rates: HouseholdRates) -> np.ndarray:
    """(households, 4): long-run chance of being in an acute episode, given the tier."""
    return rates.onset / (rates.onset + rates.dynamics.acute_recovery)


def _transition_matrices(rates: HouseholdRates, referral_scale: float) -> np.ndarray:
    """(households, 16, 16): each household's weekly state-to-state transition matrix."""
    households = len(rates.up)
    matrices = np.zeros((households, STATES, STATES))
    for code, step in enumerate(_state_transitions(rates, referral_scale)):
        tier, case = code // 4, code % 2
        case_next = (1.0 - step.close - step.move) if case else step.refer
        tier_moves = {tier: 1.0 - step.up - step.down, tier + 1: step.up, tier - 1: step.down}
        for tier_next, tier_chance in tier_moves.items():
            if not 0 <= tier_next < TIERS:
                continue
            for acute_next, acute_chance in ((0, 1 - step.acute_next), (1, step.acute_next)):
                for next_case, case_chance in ((0, 1 - case_next), (1, case_next)):
                    target = state_code(tier_next, acute_next, next_case)
                    matrices[:, code, target] += tier_chance * acute_chance * case_chance
    return matrices


def stationary_states(rates: HouseholdRates, referral_scale: float) -> np.ndarray:
    """(households, 16): each household's long-run distribution over the full chain."""
    matrices = _transition_matrices(rates, referral_scale)
    system = np.transpose(matrices, (0, 2, 1)) - np.eye(STATES)[None]
    system[:, -1, :] = 1.0  # replace one balance equation by "probabilities sum to one"
    target = np.zeros((len(matrices), STATES, 1))
    target[:, -1, 0] = 1.0
    return np.clip(np.linalg.solve(system, target)[:, :, 0], 0.0, 1.0)


def solve_referral_scale(
    rates: HouseholdRates,
    *,
    expected_points: np.ndarray,
    target_points: float,
    sample: np.ndarray,
) -> float:
    """The background referral scale whose long-run open caseload is target_points in total.

    expected_points is (households, 4, 2): the complexity a case would have by tier and acute.
    The long-run caseload is estimated exactly on an evenly spaced sample of households (the
    chain is solved for its stationary distribution) and scaled up; bisection on a log scale.
    """
    subset = _subset(rates, sample)
    points = expected_points[sample].reshape(len(sample), STATES // 2)
    scale_up = len(rates.up) / len(sample)
    low, high = -12.0, 4.0
    for _ in range(28):
        middle = (low + high) / 2
        occupancy = stationary_states(subset, float(np.exp(middle)))
        load = scale_up * (occupancy[:, 1::2] * points).sum()
        low, high = (middle, high) if load < target_points else (low, middle)
    return float(np.exp((low + high) / 2))


def open_case_share(rates: HouseholdRates, referral_scale: float, sample: np.ndarray) -> np.ndarray:
    """(4, 2): long-run chance of an open case given tier and acute, pooled over the sample."""
    occupancy = stationary_states(_subset(rates, sample), referral_scale).sum(axis=0)
    with_case = occupancy[1::2].reshape(TIERS, 2)
    return with_case / np.maximum(with_case + occupancy[0::2].reshape(TIERS, 2), 1e-12)


def _subset(rates: HouseholdRates, rows: np.ndarray) -> HouseholdRates:
    return HouseholdRates(
        dynamics=rates.dynamics,
        up=rates.up[rows],
        down=rates.down[rows],
        onset=rates.onset[rows],
        crisis=rates.crisis[rows],
    )
