"""Plain-English reasons for a household's score, from the booster's exact TreeSHAP contributions.

LightGBM's `pred_contrib` splits each raw score into per-feature contributions (log-odds). Features
are grouped by the indicator they describe (every feature of "rent_arrears" together, the agency
counts together, ...), the group contributions summed, and the largest positive groups the
household actually has on record are written out with the household's own figures. An indicator
the household does not have is never given as a reason, even when its absence raised the score.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.contract import EVENT_TYPES

REASON_SEPARATOR = " | "

EVENT_NOUNS: dict[str, tuple[str, str]] = {
    "rent_arrears": ("rent arrears record", "rent arrears records"),
    "council_tax_arrears": ("council tax arrears record", "council tax arrears records"),
    "eviction_notice": ("eviction notice", "eviction notices"),
    "possession_order": ("possession order", "possession orders"),
    "homelessness_presentation": ("homelessness presentation", "homelessness presentations"),
    "asb_report": ("anti-social behaviour report", "anti-social behaviour reports"),
    "domestic_abuse_incident": ("domestic abuse incident", "domestic abuse incidents"),
    "police_callout": ("police call-out", "police call-outs"),
    "arrest": ("arrest", "arrests"),
    "missing_person": ("missing person report", "missing person reports"),
    "fire_callout": ("fire service call-out", "fire service call-outs"),
    "deliberate_fire": ("deliberate fire", "deliberate fires"),
    "school_absence": ("school absence record", "school absence records"),
    "school_exclusion": ("school exclusion", "school exclusions"),
    "ae_attendance": ("A&E attendance", "A&E attendances"),
    "emergency_admission": ("emergency hospital admission", "emergency hospital admissions"),
    "mental_health_crisis": ("mental health crisis", "mental health crises"),
    "benefit_sanction": ("benefit sanction", "benefit sanctions"),
    "unemployment_claim": ("unemployment claim", "unemployment claims"),
    "social_care_contact": ("children's social care contact", "children's social care contacts"),
    "child_protection_plan": ("child protection plan", "child protection plans"),
    "child_taken_into_care": ("child taken into care", "children taken into care"),
    "probation_breach": ("probation breach", "probation breaches"),
}
TENURE_PHRASES: dict[str, str] = {
    "council": "council tenancy",
    "housing_association": "housing association tenancy",
    "private_rent": "private rented home",
    "owner": "owner-occupied home",
    "temporary": "living in temporary accommodation",
}
AGENCIES_GROUP = "agencies"
HOUSEHOLD_GROUP = "household"
TENURE_GROUP = "tenure"
CASES_GROUP = "cases"


def feature_group(feature: str) -> str:
    """The indicator a feature describes: an event type, or agencies/household/tenure/cases."""
    event_types = [name for name in EVENT_TYPES if feature.startswith(f"{name}_")]
    if event_types:
        return max(event_types, key=len)
    if feature.startswith("agencies_"):
        return AGENCIES_GROUP
    if feature.startswith("tenure_"):
        return TENURE_GROUP
    if feature.startswith(("case_", "cases_")):
        return CASES_GROUP
    if feature in ("adults", "children"):
        return HOUSEHOLD_GROUP
    raise ValueError(f"feature {feature!r} has no reason group; add it to models/_reasons.py")


def _plural(count: float, nouns: tuple[str, str]) -> str:
    return f"{count:g} {nouns[0] if count == 1 else nouns[1]}"


def _columns(features: pd.DataFrame, *names: str) -> list[np.ndarray]:
    return [features[name].to_numpy() for name in names]


def _event_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return features[f"{name}_days_since"].notna().to_numpy()


def _event_text(features: pd.DataFrame, name: str) -> list[str]:
    nouns = EVENT_NOUNS[name]
    count_13w, count_52w, days = _columns(
        features, f"{name}_count_13w", f"{name}_count_52w", f"{name}_days_since"
    )
    return [
        f"{_plural(recent, nouns)} in the last 13 weeks"
        if recent > 0
        else f"{_plural(year, nouns)} in the last 52 weeks"
        if year > 0
        else f"{nouns[0]} {since // 7:g} weeks ago"
        for recent, year, since in zip(count_13w, count_52w, days, strict=True)
    ]


def _arrears_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return features[f"{name}_balance_latest"].to_numpy() > 0


def _arrears_text(features: pd.DataFrame, name: str) -> list[str]:
    label = EVENT_NOUNS[name][0].removesuffix(" record")
    balance, change = _columns(features, f"{name}_balance_latest", f"{name}_change_13w")
    return [
        f"{label} of £{owed:,.0f}" + (f" (up £{rise:,.0f} in 13 weeks)" if rise > 0 else "")
        for owed, rise in zip(balance, change, strict=True)
    ]


def _school_absence_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return features["school_absence_sessions_52w"].to_numpy() > 0


def _school_absence_text(features: pd.DataFrame, name: str) -> list[str]:
    recent, year = _columns(features, "school_absence_sessions_26w", "school_absence_sessions_52w")
    return [
        f"{sessions:g} school sessions missed in the last 26 weeks"
        if sessions > 0
        else f"{older:g} school sessions missed in the last 52 weeks"
        for sessions, older in zip(recent, year, strict=True)
    ]


def _agencies_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return features["agencies_26w"].to_numpy() > 0


def _agencies_text(features: pd.DataFrame, name: str) -> list[str]:
    agencies, change = _columns(features, "agencies_26w", "agencies_change_26w")
    return [
        f"known to {count:g} {'agency' if count == 1 else 'agencies'} in the last 26 weeks"
        + (f" ({rise:g} more than the 26 weeks before)" if rise > 0 else "")
        for count, rise in zip(agencies, change, strict=True)
    ]


def _household_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return np.ones(len(features), dtype=bool)


def _household_text(features: pd.DataFrame, name: str) -> list[str]:
    adults, children = _columns(features, "adults", "children")
    return [
        f"household of {a:g} {'adult' if a == 1 else 'adults'} and "
        f"{c:g} {'child' if c == 1 else 'children'}"
        for a, c in zip(adults, children, strict=True)
    ]


def _tenure_phrases(features: pd.DataFrame) -> np.ndarray:
    phrases = np.full(len(features), "", dtype=object)
    for tenure, phrase in TENURE_PHRASES.items():
        phrases[features[f"tenure_{tenure}"].to_numpy() == 1] = phrase
    return phrases


def _tenure_present(features: pd.DataFrame, name: str) -> np.ndarray:
    return _tenure_phrases(features) != ""


def _tenure_text(features: pd.DataFrame, name: str) -> list[str]:
    return list(_tenure_phrases(features))


def _cases_present(features: pd.DataFrame, name: str) -> np.ndarray:
    open_weeks, previous = _columns(features, "case_open_weeks", "cases_previous")
    return ~np.isnan(open_weeks) | (previous > 0)


def _cases_text(features: pd.DataFrame, name: str) -> list[str]:
    open_weeks, previous, closed_ago = _columns(
        features, "case_open_weeks", "cases_previous", "case_closed_weeks_ago"
    )
    nouns = ("previous key-worker case", "previous key-worker cases")
    return [
        f"key-worker case open for {weeks:g} weeks"
        if not np.isnan(weeks)
        else f"{_plural(count, nouns)}, the last closed {ago:g} weeks ago"
        for weeks, count, ago in zip(open_weeks, previous, closed_ago, strict=True)
    ]


Present = Callable[[pd.DataFrame, str], np.ndarray]
Describe = Callable[[pd.DataFrame, str], list[str]]
SPECIAL_GROUPS: dict[str, tuple[Present, Describe]] = {
    "rent_arrears": (_arrears_present, _arrears_text),
    "council_tax_arrears": (_arrears_present, _arrears_text),
    "school_absence": (_school_absence_present, _school_absence_text),
    AGENCIES_GROUP: (_agencies_present, _agencies_text),
    HOUSEHOLD_GROUP: (_household_present, _household_text),
    TENURE_GROUP: (_tenure_present, _tenure_text),
    CASES_GROUP: (_cases_present, _cases_text),
}


def _group_functions(group: str) -> tuple[Present, Describe]:
    return SPECIAL_GROUPS.get(group, (_event_present, _event_text))


def grouped_contributions(contributions: pd.DataFrame) -> pd.DataFrame:
    """Contributions summed per indicator group (households x groups), expected value dropped."""
    per_feature = contributions.drop(columns="expected_value")
    groups = np.array([feature_group(name) for name in per_feature.columns], dtype=object)
    names = sorted(set(groups))
    membership = (groups[:, None] == np.array(names, dtype=object)[None, :]).astype(np.float64)
    return pd.DataFrame(per_feature.to_numpy() @ membership, index=per_feature.index, columns=names)


def _chosen_groups(features: pd.DataFrame, grouped: pd.DataFrame, *, top: int) -> np.ndarray:
    """(household, rank) -> group position, -1 where fewer than `top` reasons qualify."""
    present = np.column_stack(
        [_group_functions(group)[0](features, group) for group in grouped.columns]
    )
    values = grouped.to_numpy()
    strength = np.where(present & (values > 0), values, -np.inf)
    # Stable sort: equal contributions keep the groups' alphabetical order, so output is stable.
    order = np.argsort(-strength, axis=1, kind="stable")[:, :top]
    return np.where(np.isfinite(np.take_along_axis(strength, order, axis=1)), order, -1)


def reason_texts(features: pd.DataFrame, contributions: pd.DataFrame, *, top: int) -> pd.Series:
    """Up to `top` reasons per household, largest contribution first, joined by " | "."""
    grouped = grouped_contributions(contributions)
    chosen = _chosen_groups(features, grouped, top=top)
    texts = np.full(chosen.shape, "", dtype=object)
    for position, group in enumerate(grouped.columns):
        rows, ranks = np.nonzero(chosen == position)
        if len(rows):
            texts[rows, ranks] = _group_functions(group)[1](features.iloc[rows], group)
    joined = [REASON_SEPARATOR.join(text for text in row if text) for row in texts]
    return pd.Series(joined, index=features.index, name="reasons", dtype="str")
