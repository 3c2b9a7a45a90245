"""Reasons a key worker can read: TreeSHAP contributions grouped by indicator, written from records.

Every model feature belongs to one indicator group (the 4/13/26/52-week counts and days-since of an
event type are one group; arrears balances join their event type; the case-history features are
one group). A group's contribution is the sum of its features' contributions. The reasons shown
are the groups that push the household's risk up by at least the reviewed threshold, that the
household actually has records for, largest first, at most `max_reasons`. Their text comes from
`reason_templates.toml` and shows the household's own figures, never a verdict. Text is rendered
with numpy string operations per group and variant, not per household.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.build import (
    ARREARS_TYPES,
    HALF_LIVES_WEEKS,
    RISE_WINDOWS_WEEKS,
    TREND_WEEKS,
    WINDOWS_WEEKS,
)
from features.contract import (
    CLOSE_REASONS,
    EVENT_TYPES,
    PROTECTED_COLUMNS,
    SKILLS,
    SOURCES,
    TENURES,
)

TEMPLATES_PATH = Path(__file__).with_name("reason_templates.toml")
TEXT = np.dtypes.StringDType()
NO_GROUP = -1
ABSENCE_WINDOWS: tuple[int, ...] = WINDOWS_WEEKS[1:]
AGENCY_WEEKS = 26
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
            "models/_reasons.py (FEATURE_GROUPS) and models/reason_templates.toml"
        )
    return np.array([GROUP_KEYS.index(FEATURE_GROUPS[name]) for name in feature_names])


def _names_protected(feature: str) -> bool:
    return any(f"_{marker}_" in f"_{feature}_" for marker in (*PROTECTED_COLUMNS, "age"))


# --- the reviewed templates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    """The parsed, validated contents of reason_templates.toml."""

    strong_reason_log_odds: float
    max_reasons: int
    separator: str
    no_strong_reason: str
    band_lowers: tuple[float, ...]
    band_labels: tuple[str, ...]
    forbidden: tuple[str, ...]
    protected: tuple[str, ...]
    sections: Mapping[str, Mapping]

    def variants(self, group: Group) -> dict[str, str]:
        """The template of each variant of a group's reason."""
        if group.kind == "arrears":
            return dict(self.sections["arrears"][group.key])
        if group.kind == "incidents":
            return dict(self.sections["incidents"])
        if group.kind == "totals":
            return dict(self.sections["totals"][group.key])
        return dict(self.sections[group.kind])

    def skills(self, group: Group, variant: str) -> tuple[str, ...]:
        """The key-worker skills a reason points to (tenure: per tenure; others: per group)."""
        if group.kind == "tenure":
            return tuple(self.sections["tenure_skills"].get(variant, ()))
        if group.key in EVENT_TYPES:
            return tuple(self.sections["events"][group.key]["skills"])
        return ()


@functools.cache
def load_templates(path: Path = TEMPLATES_PATH) -> Templates:
    """Read and check the reviewed template file (a bad file is refused with the reason)."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
        templates = _parsed_templates(raw)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: missing or malformed setting {error}") from None
    problems = _template_problems(templates)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return templates


def _parsed_templates(raw: Mapping) -> Templates:
    policy, language, bands = raw["policy"], raw["language"], raw["bands"]
    return Templates(
        strong_reason_log_odds=float(policy["strong_reason_log_odds"]),
        max_reasons=int(policy["max_reasons"]),
        separator=str(policy["reason_separator"]),
        no_strong_reason=str(policy["no_strong_reason"]),
        band_lowers=tuple(float(band["lower"]) for band in bands),
        band_labels=tuple(str(band["label"]) for band in bands),
        forbidden=tuple(language["forbidden"]),
        protected=tuple(language["protected"]),
        sections={key: value for key, value in raw.items() if key != "language"},
    )


def _template_problems(templates: Templates) -> list[str]:
    problems = _structure_problems(templates)
    if problems:
        return problems
    for group in GROUPS:
        for variant in KIND_VARIANTS[group.kind]:
            template = templates.variants(group).get(variant)
            if template is None:
                problems.append(f"{group.key}: template {variant!r} is missing")
                continue
            unknown = set(template_fields(template)) - KIND_FIELDS[group.kind]
            if unknown:
                problems.append(f"{group.key}.{variant}: unknown fields {sorted(unknown)}")
            bad_skills = set(templates.skills(group, variant)) - set(SKILLS)
            if bad_skills:
                problems.append(f"{group.key}: skills outside the contract {sorted(bad_skills)}")
    for text in _all_texts(templates.sections):
        for word in blocked_words(text, templates=templates):
            problems.append(f"template {text!r} uses the word {word!r}")
    lowers = templates.band_lowers
    if not lowers or lowers[0] != 0.0 or list(lowers) != sorted(set(lowers)):
        problems.append("bands must start at 0 and rise")
    return problems


def _structure_problems(templates: Templates) -> list[str]:
    sections = templates.sections
    expected = {
        "events": set(EVENT_TYPES),
        "agency_names": set(SOURCES),
        "tenure": set(TENURES),
        "close_reasons": set(CLOSE_REASONS),
    }
    problems = [
        f"[{name}] must have exactly the keys {sorted(keys)}"
        for name, keys in expected.items()
        if set(sections.get(name, {})) != keys
    ]
    for group in GROUPS:
        entry = sections.get("events", {}).get(group.key, {})
        if group.key in EVENT_TYPES and not {"record", "skills"} <= set(entry):
            problems.append(f"[events.{group.key}] needs record and skills")
        if group.kind == "incidents" and not {"one", "many"} <= set(entry):
            problems.append(f"[events.{group.key}] needs one and many")
    return problems


def _all_texts(section) -> list[str]:
    if isinstance(section, str):
        return [section]
    if isinstance(section, Mapping):
        return [text for value in section.values() for text in _all_texts(value)]
    if isinstance(section, list):
        return [text for value in section for text in _all_texts(value)]
    return []


def blocked_words(text: str, *, templates: Templates | None = None) -> list[str]:
    """Forbidden (blaming) or protected-characteristic words a text uses, as whole words."""
    templates = templates or load_templates()
    lowered = text.lower()
    return [
        word
        for word in (*templates.forbidden, *templates.protected)
        if re.search(rf"(?<![a-z]){re.escape(word.lower())}(?![a-z])", lowered)
    ]


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def render(template: str, fields: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    """A template filled for `count` rows from already formatted field strings (vectorised)."""
    text = np.full(count, "", dtype=TEXT)
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            text = np.strings.add(text, literal)
        if field:
            text = np.strings.add(text, fields[field])
    return text


# --- formatting figures ------------------------------------------------------------------------


def whole_numbers(values: np.ndarray) -> np.ndarray:
    """Counts as text ("38")."""
    return np.rint(np.nan_to_num(values)).astype(np.int64).astype(TEXT)


def pounds(values: np.ndarray) -> np.ndarray:
    """Money as whole pounds with thousands separators ("1,240"), without the £ sign."""
    amount = np.rint(np.nan_to_num(values)).astype(np.int64)
    sign = np.where(amount < 0, "-", "").astype(TEXT)
    rest = np.abs(amount) // 1000
    text = (np.abs(amount) % 1000).astype(TEXT)
    text = np.where(rest > 0, np.strings.zfill(text, 3), text).astype(TEXT)
    while np.any(rest > 0):
        has_group = rest > 0
        group = (rest % 1000).astype(TEXT)
        rest //= 1000
        # Only groups with a higher group before them are zero-padded: "1,005", never "001,005".
        group = np.where(rest > 0, np.strings.zfill(group, 3), group).astype(TEXT)
        longer = np.strings.add(np.strings.add(group, ","), text)
        text = np.where(has_group, longer, text).astype(TEXT)
    return np.strings.add(sign, text)


def days_ago(days: np.ndarray) -> np.ndarray:
    """How long ago, from a number of days: "today", "9 days ago", "3 weeks ago", "5 months ago"."""
    days = np.nan_to_num(days).astype(np.int64)
    weeks, months, years = days // 7, np.rint(days / 30.4375).astype(np.int64), days // 365
    text = np.strings.add(years.astype(TEXT), " years ago")
    text = np.where(days < 730, np.strings.add(months.astype(TEXT), " months ago"), text)
    text = np.where(days < 70, np.strings.add(weeks.astype(TEXT), " weeks ago"), text)
    text = np.where(days < 14, np.strings.add(days.astype(TEXT), " days ago"), text)
    return np.where(days == 1, "yesterday", np.where(days == 0, "today", text)).astype(TEXT)


def weeks_ago(weeks: np.ndarray) -> np.ndarray:
    """How long ago, from whole weeks: "this week", "1 week ago", "6 weeks ago", "5 months ago"."""
    weeks = np.nan_to_num(weeks).astype(np.int64)
    text = np.where(weeks < 10, np.strings.add(weeks.astype(TEXT), " weeks ago"), "")
    months = np.strings.add(np.rint(weeks * 7 / 30.4375).astype(np.int64).astype(TEXT), " months")
    text = np.where(weeks >= 10, np.strings.add(months, " ago"), text)
    return np.where(weeks == 1, "1 week ago", np.where(weeks == 0, "this week", text)).astype(TEXT)


# --- per-kind rendering ------------------------------------------------------------------------
# Each kind has a `_variants` function (which template applies to each row, -1 when the household
# has nothing on record for the indicator, so it cannot be a reason) and a `_fields` function
# (the formatted figures, for the rows being rendered only).

Columns = Mapping[str, np.ndarray]


def _chosen_window(values: Columns, pushes: Columns, names: list[str]) -> np.ndarray:
    """Per row, which of `names` (windows, shortest first) to show: the one that pushed the risk
    up most among those with a record in them; equal pushes go to the shortest window."""
    present = np.column_stack([values[name] > 0 for name in names])
    push = np.column_stack([pushes[name] for name in names])
    return np.argmax(np.where(present, push, -np.inf), axis=1)


def _pick(values: Columns, names: list[str], window: np.ndarray) -> np.ndarray:
    return np.column_stack([values[name] for name in names])[np.arange(len(window)), window]


def _incident_names(key: str) -> list[str]:
    return [f"{key}_count_{weeks}w" for weeks in WINDOWS_WEEKS]


def _incidents_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    window = _chosen_window(values, pushes, _incident_names(key))
    count = _pick(values, _incident_names(key), window)
    known = ~np.isnan(values[f"{key}_days_since"])
    return np.where(count > 1, 1, np.where(count == 1, 0, np.where(known, 2, NO_GROUP)))


def _incidents_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _incident_names(key))
    count = _pick(values, _incident_names(key), window)
    nouns = templates.sections["events"][key]
    return {
        "count": whole_numbers(count),
        "weeks": np.array(WINDOWS_WEEKS)[window].astype(TEXT),
        "latest": days_ago(values[f"{key}_days_since"]),
        "noun": np.where(count > 1, nouns["many"], nouns["one"]).astype(TEXT),
    }


def _totals_names(key: str) -> list[str]:
    return [f"{key}_count_{weeks}w" for weeks in WINDOWS_WEEKS]


def _totals_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    count = _pick(values, _totals_names(key), _chosen_window(values, pushes, _totals_names(key)))
    return np.where(count > 1, 1, np.where(count == 1, 0, NO_GROUP))


def _totals_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _totals_names(key))
    return {
        "count": whole_numbers(_pick(values, _totals_names(key), window)),
        "weeks": np.array(WINDOWS_WEEKS)[window].astype(TEXT),
    }


def _arrears_amounts(key: str, values: Columns) -> tuple[np.ndarray, np.ndarray]:
    # Compared in whole pounds, so a text never says "rose from £310 to £310".
    latest = np.rint(values[f"{key}_balance_latest"])
    before = np.rint(values[f"{key}_balance_{TREND_WEEKS}w_ago"])
    return latest, before


def _arrears_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    latest, before = _arrears_amounts(key, values)
    owed = latest > 0
    variant = np.full(len(latest), NO_GROUP)
    variant = np.where(owed & (latest < before), 3, variant)
    variant = np.where(owed & (latest == before), 2, variant)
    variant = np.where(owed & np.isnan(before), 1, variant)
    variant = np.where(owed & (latest > before), 0, variant)
    return np.where((latest == 0) & (before > 0), 4, variant)


def _arrears_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    latest, before = _arrears_amounts(key, values)
    weeks = np.full(len(latest), str(TREND_WEEKS), dtype=TEXT)
    return {"latest": pounds(latest), "before": pounds(before), "weeks": weeks}


def _absence_names() -> list[str]:
    return [f"school_absence_sessions_{weeks}w" for weeks in ABSENCE_WINDOWS]


def _absence_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    sessions = _pick(values, _absence_names(), _chosen_window(values, pushes, _absence_names()))
    sessions = np.rint(sessions)
    known = ~np.isnan(values["school_absence_days_since"])
    return np.where(sessions > 1, 1, np.where(sessions == 1, 0, np.where(known, 2, NO_GROUP)))


def _absence_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _absence_names())
    return {
        "sessions": whole_numbers(_pick(values, _absence_names(), window)),
        "weeks": np.array(ABSENCE_WINDOWS)[window].astype(TEXT),
        "latest": days_ago(values["school_absence_days_since"]),
    }


def _agencies_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    recent, change, year = (
        values["agencies_26w"],
        values["agencies_change_26w"],
        values["agencies_52w"],
    )
    variant = np.where(year > 1, 4, np.where(year == 1, 3, NO_GROUP))
    variant = np.where(recent > 1, np.where(change > 0, 2, 1), variant)
    return np.where(recent == 1, 0, variant)


def _agencies_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    recent = values["agencies_26w"]
    names = values.get("agency_names")
    if names is None:
        names = np.full(len(recent), "", dtype=TEXT)
    bracketed = np.strings.add(np.strings.add(" (", names), ")")
    return {
        "count": whole_numbers(np.where(recent > 0, recent, values["agencies_52w"])),
        "change": whole_numbers(values["agencies_change_26w"]),
        "names": np.where(np.strings.str_len(names) > 0, bracketed, "").astype(TEXT),
    }


def _household_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    # 0, 1, 2: none, one, many; children's variants first, then adults'.
    children = np.minimum(np.rint(values["children"]), 2).astype(np.int64)
    adults = np.minimum(np.rint(values["adults"]), 2).astype(np.int64)
    return np.where(pushes["children"] >= pushes["adults"], children, 3 + adults)


def _household_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {
        "children": whole_numbers(values["children"]),
        "adults": whole_numbers(values["adults"]),
    }


def _tenure_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    flags = np.column_stack([values[f"tenure_{name}"] == 1 for name in TENURES])
    return np.where(flags.any(axis=1), np.argmax(flags, axis=1), NO_GROUP)


def _tenure_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {}


def _case_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    is_open = values["case_open"] == 1
    previous = values["cases_previous"]
    variant = np.where(previous > 1, 3, np.where(previous == 1, 2, NO_GROUP))
    return np.where(is_open, np.where(values["case_open_weeks"] >= 1, 1, 0), variant)


def _case_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {
        "open_weeks": whole_numbers(values["case_open_weeks"]),
        "previous": whole_numbers(values["cases_previous"]),
        "closed": weeks_ago(values["case_closed_weeks_ago"]),
    }


KIND_FUNCTIONS = {
    "incidents": (_incidents_variants, _incidents_fields),
    "totals": (_totals_variants, _totals_fields),
    "arrears": (_arrears_variants, _arrears_fields),
    "school_absence": (_absence_variants, _absence_fields),
    "agencies": (_agencies_variants, _agencies_fields),
    "household": (_household_variants, _household_fields),
    "tenure": (_tenure_variants, _tenure_fields),
    "case_history": (_case_variants, _case_fields),
}


TEXT_COLUMNS: dict[str, list[str]] = {
    group.key: [name for name, key in FEATURE_GROUPS.items() if key == group.key]
    for group in GROUPS
}


def text_columns(group: Group) -> list[str]:
    """The feature columns a group's text reads (all must be in the features frame)."""
    return TEXT_COLUMNS[group.key]


# --- choosing and writing the reasons ----------------------------------------------------------


@dataclass(frozen=True)
class RowReasons:
    """Reasons of many households: (households x max_reasons) arrays, best reason first.

    `group` is a position in GROUPS (-1 where a household has fewer reasons), `contribution` the
    group's summed TreeSHAP (log-odds), `share` its part of everything that pushes the household's
    risk up, `text` the rendered sentence and `skills` a bitmask over SKILLS.
    """

    group: np.ndarray
    contribution: np.ndarray
    share: np.ndarray
    text: np.ndarray
    skills: np.ndarray

    @property
    def count(self) -> np.ndarray:
        return (self.group != NO_GROUP).sum(axis=1)


def group_contributions(attributions: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """(households x GROUPS) sums of the per-feature contributions of each group."""
    groups = feature_groups(feature_names)
    by_feature = attributions.T
    by_group = np.zeros((len(GROUPS), len(attributions)))
    for group in np.unique(groups):
        by_group[group] = by_feature[groups == group].sum(axis=0)
    return by_group.T


def reasons_for_rows(
    *,
    values: Columns,
    attributions: np.ndarray,
    feature_names: list[str],
    max_reasons: int,
    templates: Templates,
) -> RowReasons:
    """Choose and write the reasons of every row (rows of `values` align with `attributions`)."""
    pushes = _feature_pushes(attributions, feature_names)
    by_group = group_contributions(attributions, feature_names)
    variants = np.column_stack(
        [KIND_FUNCTIONS[group.kind][0](group.key, values, pushes) for group in GROUPS]
    )
    strong = (variants != NO_GROUP) & (by_group >= templates.strong_reason_log_odds)
    strength = np.where(strong, by_group, -np.inf)
    # Stable: equal pushes keep the GROUPS order, so the same input always gives the same reasons.
    chosen = np.argsort(-strength, axis=1, kind="stable")[:, :max_reasons]
    chosen_strength = np.take_along_axis(strength, chosen, axis=1)
    group = np.where(np.isfinite(chosen_strength), chosen, NO_GROUP)
    positive_push = np.maximum(by_group, 0.0).sum(axis=1, keepdims=True)
    contribution = np.where(group != NO_GROUP, chosen_strength, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = contribution / positive_push
    text, skills = _render_chosen(group, variants, values, pushes, templates)
    return RowReasons(group=group, contribution=contribution, share=share, text=text, skills=skills)


def _feature_pushes(attributions: np.ndarray, feature_names: list[str]) -> dict[str, np.ndarray]:
    zeros = np.zeros(len(attributions))
    pushes = dict.fromkeys(FEATURE_GROUPS, zeros)
    pushes |= {name: attributions[:, column] for column, name in enumerate(feature_names)}
    return pushes


def _render_chosen(group, variants, values, pushes, templates) -> tuple[np.ndarray, np.ndarray]:
    text = np.full(group.shape, "", dtype=TEXT)
    skills = np.zeros(group.shape, dtype=np.int64)
    for position, spec in enumerate(GROUPS):
        rows, ranks = np.nonzero(group == position)
        if not len(rows):
            continue
        names = [*text_columns(spec), *(("agency_names",) if spec.kind == "agencies" else ())]
        subset = {name: values[name][rows] for name in names if name in values}
        subset_pushes = {name: pushes[name][rows] for name in text_columns(spec)}
        fields = KIND_FUNCTIONS[spec.kind][1](spec.key, subset, subset_pushes, templates)
        row_variants = variants[rows, position]
        for code, variant in enumerate(KIND_VARIANTS[spec.kind]):
            selected = row_variants == code
            if not selected.any():
                continue
            template = templates.variants(spec)[variant]
            chosen_fields = {name: field[selected] for name, field in fields.items()}
            text[rows[selected], ranks[selected]] = render(
                template, chosen_fields, int(selected.sum())
            )
            skills[rows[selected], ranks[selected]] = skill_mask(templates.skills(spec, variant))
    return text, skills


def skill_mask(skills: tuple[str, ...]) -> int:
    """Bitmask over SKILLS."""
    return sum(1 << SKILLS.index(skill) for skill in set(skills))


def skills_of_mask(mask: int) -> list[str]:
    """Skills of a bitmask, in contract (SKILLS) order."""
    return [skill for position, skill in enumerate(SKILLS) if mask >> position & 1]


def needs_text(reasons: RowReasons) -> np.ndarray:
    """`needs` per row: the skills of the shown reasons, in contract order, ";"-separated."""
    masks = np.bitwise_or.reduce(reasons.skills, axis=1)
    distinct, inverse = np.unique(masks, return_inverse=True)
    texts = np.array([";".join(skills_of_mask(int(mask))) for mask in distinct], dtype=object)
    return texts[inverse.reshape(-1)]


def join_columns(texts: np.ndarray, present: np.ndarray, separator: str) -> np.ndarray:
    """Per row, the texts of a (rows x columns) array joined by `separator`, where each row's
    present texts come first (as chosen reasons do)."""
    joined = np.where(present[:, 0], texts[:, 0], "").astype(TEXT)
    for column in range(1, texts.shape[1]):
        rows = np.flatnonzero(present[:, column])
        glued = np.strings.add(joined[rows], separator)
        joined[rows] = np.strings.add(glued, texts[rows, column])
    return joined


def joined_text(reasons: RowReasons, *, templates: Templates) -> np.ndarray:
    """All shown reasons of each row joined by the separator, or the "no strong factor" line."""
    joined = join_columns(reasons.text, reasons.group != NO_GROUP, templates.separator)
    return np.where(reasons.count > 0, joined, templates.no_strong_reason).astype(TEXT)


def group_keys_text(reasons: RowReasons) -> np.ndarray:
    """The shown reasons' group keys per row, ";"-separated, best first."""
    keys = np.array([*GROUP_KEYS, ""], dtype=TEXT)[reasons.group]
    return join_columns(keys, reasons.group != NO_GROUP, ";")


def risk_bands(risk: np.ndarray, *, templates: Templates) -> np.ndarray:
    """The band label of each probability (bands by their reviewed lower edges)."""
    position = np.searchsorted(np.array(templates.band_lowers), risk, side="right") - 1
    return np.array(templates.band_labels, dtype=object)[np.clip(position, 0, None)]


# --- agency names for the agencies reason ------------------------------------------------------


def positions(values: pd.Series, universe) -> np.ndarray:
    """Position of each value in `universe` (-1 when absent), hashed in Arrow for speed."""
    found = pc.index_in(pa.array(values), value_set=pa.array(list(universe), type=pa.string()))
    return found.fill_null(-1).to_numpy().astype(np.intp)


def recent_agency_names(
    events: pd.DataFrame, *, household_ids: pd.Index, as_of, templates: Templates
) -> np.ndarray:
    """Per household, the agencies with a record in the last 26 weeks known by `as_of`, named as
    the templates say, in contract order (the same rule as the agencies_26w feature)."""
    as_of = np.datetime64(pd.Timestamp(as_of).normalize(), "ns")
    window_start = as_of - np.timedelta64(AGENCY_WEEKS * 7, "D")
    occurred = events["occurred_at"].to_numpy()
    recent = (events["known_at"].to_numpy() <= as_of) & (occurred > window_start)
    recent &= occurred <= as_of
    household = positions(events["household_id"].loc[recent], household_ids)
    source = positions(events["source"].loc[recent], SOURCES)
    keep = (household >= 0) & (source >= 0)
    masks = np.zeros(len(household_ids), dtype=np.int64)
    np.bitwise_or.at(masks, household[keep], np.left_shift(1, source[keep]).astype(np.int64))
    distinct, inverse = np.unique(masks, return_inverse=True)
    names = templates.sections["agency_names"]
    texts = [
        ", ".join(names[source] for bit, source in enumerate(SOURCES) if mask >> bit & 1)
        for mask in distinct
    ]
    return np.array(texts, dtype=TEXT)[inverse.reshape(-1)]


def household_agency_names(events: Mapping[str, np.ndarray], *, as_of, templates: Templates) -> str:
    """`recent_agency_names` for one household's events given as columns."""
    as_of = np.datetime64(pd.Timestamp(as_of).normalize(), "ns")
    occurred = events["occurred_at"]
    recent = (events["known_at"] <= as_of) & (occurred <= as_of)
    recent &= occurred > as_of - np.timedelta64(AGENCY_WEEKS * 7, "D")
    found = set(events["source"][recent])
    names = templates.sections["agency_names"]
    return ", ".join(names[source] for source in SOURCES if source in found)
