"""Outcome measures per ward and week, and the difference-in-differences of a staggered roll-out.

Stoke's programme was judged on measures, not targets: rent arrears, evictions, anti-social
behaviour, A&E contacts, school absence, demand on each agency and the share of households in
each need tier, compared between wards that started early (pilot) and wards that started later
(control). `ward_week_outcomes` turns one simulated week into one row per ward;
`difference_in_differences` compares the change from before to after the early wards started in
the early wards with the same change in the late wards, with a standard error over wards.

All rates are per 1,000 households per week, so wards of different sizes compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from features.contract import CRISIS_EVENT_TYPES, EVENT_TYPES, SOURCES

TIER_COUNT = 4
# name: (label, unit) in the order tables and plots show them.
MEASURES: dict[str, tuple[str, str]] = {
    "crises": ("Crises recorded", "per 1,000 households per week"),
    "rent_arrears_households": ("Households in rent arrears", "per 1,000 households"),
    "rent_arrears_balance": ("Rent arrears owed", "GBP per household"),
    "evictions": ("Eviction notices and possession orders", "per 1,000 households per week"),
    "asb": ("Anti-social behaviour reports", "per 1,000 households per week"),
    "ae": ("A&E attendances", "per 1,000 households per week"),
    "school_absence": ("School sessions missed (termly returns)", "per 1,000 households per week"),
    "demand": ("Contacts with any agency", "per 1,000 households per week"),
    **{
        f"demand_{source}": (
            f"Demand on {source.replace('_', ' ')}",
            "per 1,000 households per week",
        )
        for source in SOURCES
    },
    **{f"tier_{tier}": (f"Share in need tier {tier}", "% of households") for tier in range(4)},
}
DID_MEASURES: tuple[str, ...] = (
    "crises",
    "rent_arrears_households",
    "evictions",
    "asb",
    "ae",
    "demand",
    "tier_3",
)
_EVENT_ORDER = tuple(EVENT_TYPES)
_SOURCE_OF = np.array([SOURCES.index(EVENT_TYPES[name].source) for name in _EVENT_ORDER])


@dataclass(frozen=True)
class WardIndex:
    """Each household's ward (code into `wards`) and each ward's locality and size."""

    household_ids: pd.Index
    ward_code: np.ndarray
    wards: np.ndarray
    ward_locality: np.ndarray
    ward_households: np.ndarray


def ward_index(households: pd.DataFrame) -> WardIndex:
    """Ward codes of the households table (wards sorted by name)."""
    codes, wards = pd.factorize(households["ward"], sort=True)
    locality = households.groupby("ward")["locality"].first().reindex(wards)
    return WardIndex(
        household_ids=pd.Index(households["household_id"]),
        ward_code=codes.astype(np.int64),
        wards=np.asarray(wards, dtype=object),
        ward_locality=locality.to_numpy(dtype=object),
        ward_households=np.bincount(codes, minlength=len(wards)),
    )


def _per_ward(index: WardIndex, codes: np.ndarray, weights=None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=len(index.wards)).astype(np.float64)


def ward_week_outcomes(
    *, index: WardIndex, events: pd.DataFrame, hidden_state: pd.DataFrame, week: int
) -> pd.DataFrame:
    """One row per ward: every measure for the week's events (by occurrence) and hidden state."""
    if not (hidden_state["household_id"].to_numpy() == index.household_ids.to_numpy()).all():
        raise ValueError("hidden_state rows must be in the households table's order")
    event_codes = index.ward_code[index.household_ids.get_indexer(events["household_id"])]
    kind = pd.Index(_EVENT_ORDER).get_indexer(events["event_type"])
    per_thousand = 1000.0 / np.maximum(index.ward_households, 1)

    def rate(mask: np.ndarray, weights=None) -> np.ndarray:
        return _per_ward(index, event_codes[mask], None if weights is None else weights[mask])

    crisis_kinds = [_EVENT_ORDER.index(name) for name in CRISIS_EVENT_TYPES]
    named = {name: kind == _EVENT_ORDER.index(name) for name in _EVENT_ORDER}
    balance = hidden_state["rent_arrears_balance"].to_numpy()
    columns = {
        "crises": rate(np.isin(kind, crisis_kinds)) * per_thousand,
        "rent_arrears_households": _per_ward(index, index.ward_code[balance > 0]) * per_thousand,
        "rent_arrears_balance": _per_ward(index, index.ward_code, balance) / index.ward_households,
        "evictions": rate(named["eviction_notice"] | named["possession_order"]) * per_thousand,
        "asb": rate(named["asb_report"]) * per_thousand,
        "ae": rate(named["ae_attendance"]) * per_thousand,
        "school_absence": rate(named["school_absence"], events["value"].to_numpy()) * per_thousand,
        "demand": rate(np.ones(len(events), dtype=bool)) * per_thousand,
    }
    source = _SOURCE_OF[kind]
    for position, name in enumerate(SOURCES):
        columns[f"demand_{name}"] = rate(source == position) * per_thousand
    tier = hidden_state["tier"].to_numpy()
    for level in range(TIER_COUNT):
        columns[f"tier_{level}"] = (
            _per_ward(index, index.ward_code[tier == level]) * 100.0 / index.ward_households
        )
    return pd.DataFrame(
        {
            "week": np.int64(week),
            "locality": pd.array(index.ward_locality, dtype="str"),
            "ward": pd.array(index.wards, dtype="str"),
            "households": index.ward_households.astype(np.int64),
            **columns,
        }
    )


def aggregate_outcomes(panel: pd.DataFrame, *, by: list[str]) -> pd.DataFrame:
    """Household-weighted means of every measure over wards, grouped by `by` (e.g. locality)."""
    measures = [name for name in MEASURES if name in panel.columns]
    weighted = (
        panel[measures]
        .mul(panel["households"], axis=0)
        .assign(**{column: panel[column] for column in by}, households=panel["households"])
    )
    totals = weighted.groupby(by, sort=True).sum()
    return totals[measures].div(totals["households"], axis=0).reset_index()


def rollout_wards(index: WardIndex, *, seed: int = 0) -> tuple[str, ...]:
    """The early (pilot) wards: half of each locality's wards, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    early = []
    for locality in sorted(set(index.ward_locality)):
        wards = sorted(index.wards[index.ward_locality == locality])
        shuffled = [wards[position] for position in rng.permutation(len(wards))]
        early += shuffled[: (len(wards) + 1) // 2]
    return tuple(sorted(early))


@dataclass(frozen=True)
class DidEstimate:
    """A difference-in-differences estimate with its ward-level standard error."""

    estimate: float
    standard_error: float
    ci_low: float
    ci_high: float
    p_value: float
    treated_units: int
    control_units: int


def difference_in_differences(
    panel: pd.DataFrame, *, outcome: str, unit: str, treated: str, post: str
) -> DidEstimate:
    """(treated post - pre) minus (control post - pre), over units' period means.

    Each unit's weeks are collapsed to a pre and a post mean first, so serial correlation within
    a unit cannot understate the error (Bertrand, Duflo and Mullainathan 2004); the standard
    error is Welch's over units, with a t interval.
    """
    means = panel.groupby([unit, treated, post])[outcome].mean().unstack(post)
    if not {True, False} <= set(means.columns):
        raise ValueError("the panel needs weeks both before and after the start")
    change = (means[True] - means[False]).dropna().reset_index(level=treated)
    first = change.loc[change[treated], 0].to_numpy()
    second = change.loc[~change[treated], 0].to_numpy()
    if len(first) < 2 or len(second) < 2:
        raise ValueError("difference-in-differences needs at least two units in each group")
    estimate = float(first.mean() - second.mean())
    var_first, var_second = first.var(ddof=1) / len(first), second.var(ddof=1) / len(second)
    se = float(np.sqrt(var_first + var_second))
    denominator = var_first**2 / (len(first) - 1) + var_second**2 / (len(second) - 1)
    freedom = (var_first + var_second) ** 2 / denominator if denominator > 0 else np.inf
    spread = float(stats.t.ppf(0.975, freedom)) * se
    p_value = float(2 * stats.t.sf(abs(estimate) / se, freedom)) if se > 0 else 0.0
    return DidEstimate(
        estimate, se, estimate - spread, estimate + spread, p_value, len(first), len(second)
    )


def did_table(
    panel: pd.DataFrame,
    *,
    early_wards: tuple[str, ...],
    pre_weeks: tuple[int, int],
    post_weeks: tuple[int, int],
    measures: tuple[str, ...] = DID_MEASURES,
    unit: tuple[str, ...] = ("seed", "ward"),
) -> pd.DataFrame:
    """DiD of each measure (post weeks vs pre weeks, both [first, last)), with a pre-trend check.

    The pre-trend check is a placebo: the same estimate between the first and second half of the
    pre weeks, when neither group had started; it should be near zero.
    """
    in_pre = panel["week"].between(pre_weeks[0], pre_weeks[1] - 1)
    in_post = panel["week"].between(post_weeks[0], post_weeks[1] - 1)
    frame = panel.assign(
        unit=panel[list(unit)].astype("str").agg("/".join, axis=1),
        early=panel["ward"].isin(early_wards),
    )
    middle = (pre_weeks[0] + pre_weeks[1]) // 2
    rows = []
    for measure in measures:
        main = difference_in_differences(
            frame.loc[in_pre | in_post].assign(post=in_post[in_pre | in_post]),
            outcome=measure,
            unit="unit",
            treated="early",
            post="post",
        )
        placebo = difference_in_differences(
            frame.loc[in_pre].assign(post=frame.loc[in_pre, "week"] >= middle),
            outcome=measure,
            unit="unit",
            treated="early",
            post="post",
        )
        rows.append(
            {
                "measure": measure,
                "label": MEASURES[measure][0],
                "unit": MEASURES[measure][1],
                "estimate": main.estimate,
                "standard_error": main.standard_error,
                "ci_low": main.ci_low,
                "ci_high": main.ci_high,
                "p_value": main.p_value,
                "pre_trend_estimate": placebo.estimate,
                "pre_trend_p_value": placebo.p_value,
                "early_units": main.treated_units,
                "late_units": main.control_units,
            }
        )
    return pd.DataFrame(rows)
