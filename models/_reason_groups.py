"""Reason groups: every model feature belongs to one indicator, and a group's push is the sum.

The 4/13/26/52-week counts and days-since of an event type are one group; arrears balances join
their event type; the case-history features are one group. GROUPS is in the order of the templates
file (equal contributions are ranked in this order); KIND_VARIANTS and KIND_FIELDS say which
template variants and placeholders each kind of group has.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from features.build import (
    ARREARS_TYPES,
    HALF_LIVES_WEEKS,
    RISE_WINDOWS_WEEKS,
    TREND_WEEKS,
    WINDOWS_WEEKS,
)
from features.contract import CLOSE_REASONS, EVENT_TYPES, PROTECTED_COLUMNS, TENURES

NO_GROUP = -1
ABSENCE_WINDOWS: tuple[int, ...] = WINDOWS_WEEKS[1:]
# Kinds of reason group and the template variants each must define, in the order codes use them.
KIND_VARIANTS: dict[str, tuple[str, ...]] = {
    "incidents": ("one", "many", "earlier"),
    "totals": ("one", "many"),
    "arrears": ("rose", "new", "steady", "fell", "cleared"),
    "school_absence": ("one", "many", "earlier"),
    "agencies": ("one", "many", "rose", "earlier_one", "earlier_many"),
    "household": (
        "children_none",
        "children_one",
        "children_many",
        "adults_none",
        "adults_one",
        "adults_many",
    ),
    "tenure": TENURES,
    "case_history": ("open_new", "open", "previous_one", "previous_many"),
}
KIND_FIELDS: dict[str, frozenset[str]] = {
    "incidents": frozenset({"count", "weeks", "latest", "noun"}),
    "totals": frozenset({"count", "weeks"}),
    "arrears": frozenset({"latest", "before", "weeks"}),
    "school_absence": frozenset({"sessions", "weeks", "latest"}),
    "agencies": frozenset({"count", "change", "names"}),
    "household": frozenset({"children", "adults"}),
    "tenure": frozenset(),
    "case_history": frozenset({"open_weeks", "previous", "closed"}),
}


@dataclass(frozen=True)
class Group:
    """One indicator: its key (an event type, or agencies/household/tenure/case_history)."""

    key: str
    kind: str


# Records counted over every agency: contacts (incidents) and crises.
TOTALS: tuple[str, ...] = ("contacts", "crises")


def _event_kind(event_type: str) -> str:
    if event_type in ARREARS_TYPES:
        return "arrears"
    return "school_absence" if event_type == "school_absence" else "incidents"


# In the order of the templates file; equal contributions are ranked in this order.
GROUPS: tuple[Group, ...] = (
    *(Group(name, _event_kind(name)) for name in EVENT_TYPES),
    *(Group(name, "totals") for name in TOTALS),
    *(Group(name, name) for name in ("agencies", "household", "tenure", "case_history")),
)
GROUP_KEYS: tuple[str, ...] = tuple(group.key for group in GROUPS)


def _feature_group_table() -> dict[str, str]:
    table = {}
    for name in EVENT_TYPES:
        table |= {f"{name}_count_{weeks}w": name for weeks in WINDOWS_WEEKS}
        table[f"{name}_days_since"] = name
    for name in ARREARS_TYPES:
        for suffix in ("balance_latest", f"balance_{TREND_WEEKS}w_ago", f"change_{TREND_WEEKS}w"):
            table[f"{name}_{suffix}"] = name
        for weeks in RISE_WINDOWS_WEEKS:
            table |= dict.fromkeys((f"{name}_rises_{weeks}w", f"{name}_risen_{weeks}w"), name)
    for name in TOTALS:
        table |= {f"{name}_count_{weeks}w": name for weeks in WINDOWS_WEEKS}
        table |= {f"{name}_decayed_{weeks}w": name for weeks in HALF_LIVES_WEEKS}
    table["event_types_52w"] = "contacts"
    table |= {f"school_absence_sessions_{weeks}w": "school_absence" for weeks in ABSENCE_WINDOWS}
    table |= dict.fromkeys(("agencies_26w", "agencies_change_26w", "agencies_52w"), "agencies")
    table |= {"adults": "household", "children": "household"}
    table |= {f"tenure_{name}": "tenure" for name in TENURES}
    case_features = ["cases_previous", "case_open", "case_open_weeks", "case_closed_weeks_ago"]
    case_features += [f"cases_closed_{reason}" for reason in CLOSE_REASONS]
    table |= dict.fromkeys(case_features, "case_history")
    return table


FEATURE_GROUPS: dict[str, str] = _feature_group_table()


def feature_groups(feature_names: list[str]) -> np.ndarray:
    """Position in GROUPS of each feature's indicator group; refuses unmapped or protected ones."""
    return _feature_groups(tuple(feature_names)).copy()


@functools.lru_cache(maxsize=16)
def _feature_groups(feature_names: tuple[str, ...]) -> np.ndarray:
    protected = [name for name in feature_names if _names_protected(name)]
    if protected:
        raise ValueError(f"protected characteristics cannot be model features: {protected}")
    unknown = [name for name in feature_names if name not in FEATURE_GROUPS]
    if unknown:
        raise ValueError(
            f"features without a reviewed reason template: {unknown}; add them to "
            "models/_reason_groups.py (FEATURE_GROUPS) and models/reason_templates.toml"
        )
    return np.array([GROUP_KEYS.index(FEATURE_GROUPS[name]) for name in feature_names])


def _names_protected(feature: str) -> bool:
    return any(f"_{marker}_" in f"_{feature}_" for marker in (*PROTECTED_COLUMNS, "age"))


TEXT_COLUMNS: dict[str, list[str]] = {
    group.key: [name for name, key in FEATURE_GROUPS.items() if key == group.key]
    for group in GROUPS
}


def text_columns(group: Group) -> list[str]:
    """The feature columns a group's text reads (all must be in the features frame)."""
    return TEXT_COLUMNS[group.key]


def group_contributions(attributions: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """(households x GROUPS) sums of the per-feature contributions of each group."""
    groups = feature_groups(feature_names)
    by_feature = attributions.T
    by_group = np.zeros((len(GROUPS), len(attributions)))
    for group in np.unique(groups):
        by_group[group] = by_feature[groups == group].sum(axis=0)
    return by_group.T
