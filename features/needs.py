"""A household's needs from its own records: which key-worker skills its records call for, and why.

This is the one mapping from records to key-worker skills (`EVENT_SKILLS`): the weekly scores'
`needs`, the allocation's safeguarding rule and the reason texts (models/_templates.py reads the
skills of a reason from here) all follow it.

The rule, as of a date (only records with `known_at` on or before it count; look-backs are measured
on `occurred_at`, as every feature is):
- a household has need S when it has at least one record of an event type mapped to S that
  occurred within S's look-back (`NeedsSettings.lookback_weeks`), except:
- arrears (rent, council tax) point to `debt` only when the latest statement of that kind occurred
  within the look-back and its balance is above `arrears_threshold` (GBP);
- school absence points to `school_attendance` only when the sessions missed within the look-back
  add up to persistent absence: at least `persistent_absence_share` of the sessions a school opens
  in that time (`SCHOOL_SESSIONS_PER_YEAR` spread over 52 weeks; 10% of 26 weeks is 19 sessions).

Each need comes with its evidence in plain English, e.g. "domestic abuse: 2 incidents, latest 3
weeks ago". Everything is computed with numpy over all households at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from features._encode import EVENT_TYPE_ORDER, day_number, encode_events
from features._needs_settings import (
    DEFAULT_LOOKBACK_WEEKS,
    DEFAULT_SAFEGUARDING,
    SCHOOL_SESSIONS_PER_YEAR,
    SETTING_NAMES,
    NeedsSettings,
    needs_settings_from_mapping,
)
from features.contract import EVENT_TYPES, SKILLS

__all__ = [
    "DEFAULT_SAFEGUARDING",
    "DEFAULT_LOOKBACK_WEEKS",
    "EVENT_SKILLS",
    "EVIDENCE_SEPARATOR",
    "NEEDS_SEPARATOR",
    "NEED_LABELS",
    "SCHOOL_SESSIONS_PER_YEAR",
    "SETTING_NAMES",
    "NeedsSettings",
    "event_types_for",
    "household_needs",
    "need_label",
    "needs_of_records",
    "needs_settings_from_mapping",
]

TEXT = np.dtypes.StringDType()
NEEDS_SEPARATOR = ";"
EVIDENCE_SEPARATOR = " | "
ARREARS_TYPES: tuple[str, ...] = ("rent_arrears", "council_tax_arrears")
ABSENCE_TYPE = "school_absence"
NEVER = np.iinfo(np.int64).max  # the age of a record that does not exist
EVENT_CODE: Mapping[str, int] = MappingProxyType({n: at for at, n in enumerate(EVENT_TYPE_ORDER)})

# Event type -> (the skills its records call for, the noun for one record, for several). Arrears
# and school absence are described by their balance and sessions instead of a count.
_EVENT_NEEDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "rent_arrears": (("debt",), "rent arrears", "rent arrears"),
    "council_tax_arrears": (("debt",), "council tax arrears", "council tax arrears"),
    "eviction_notice": (("housing",), "eviction notice", "eviction notices"),
    "possession_order": (("housing",), "possession order", "possession orders"),
    "homelessness_presentation": (
        ("housing",),
        "homelessness presentation",
        "homelessness presentations",
    ),
    "asb_report": (("asb",), "anti-social behaviour report", "anti-social behaviour reports"),
    "domestic_abuse_incident": (("domestic_abuse",), "incident", "incidents"),
    "police_callout": ((), "police call-out", "police call-outs"),
    "arrest": (("asb",), "arrest", "arrests"),
    "missing_person": (("youth",), "missing person report", "missing person reports"),
    "fire_callout": ((), "fire service call-out", "fire service call-outs"),
    "deliberate_fire": (("asb",), "deliberate fire", "deliberate fires"),
    "school_absence": (("school_attendance",), "session missed", "sessions missed"),
    "school_exclusion": (("school_attendance", "youth"), "school exclusion", "school exclusions"),
    "ae_attendance": ((), "A&E attendance", "A&E attendances"),
    "emergency_admission": ((), "emergency admission", "emergency admissions"),
    "mental_health_crisis": (("mental_health",), "crisis contact", "crisis contacts"),
    "benefit_sanction": (("employment", "debt"), "benefit sanction", "benefit sanctions"),
    "unemployment_claim": (("employment",), "unemployment claim", "unemployment claims"),
    "social_care_contact": (
        ("parenting",),
        "contact with children's social care",
        "contacts with children's social care",
    ),
    "child_protection_plan": (
        ("parenting",),
        "child protection plan started",
        "child protection plans started",
    ),
    "child_taken_into_care": (("parenting",), "child taken into care", "children taken into care"),
    "probation_breach": (("asb",), "probation breach", "probation breaches"),
}
EVENT_SKILLS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: skills for name, (skills, _, _) in _EVENT_NEEDS.items()}
)
NEED_LABELS: Mapping[str, str] = MappingProxyType(
    {
        skill: {"asb": "anti-social behaviour"}.get(skill, skill.replace("_", " "))
        for skill in SKILLS
    }
)


def _check_mapping() -> None:
    if set(_EVENT_NEEDS) != set(EVENT_TYPES):
        raise ValueError("features.needs: every contract event type needs exactly one entry")
    unknown = {s for skills, _, _ in _EVENT_NEEDS.values() for s in skills} - set(SKILLS)
    if unknown:
        raise ValueError(f"features.needs: skills outside the contract {sorted(unknown)}")


_check_mapping()


def need_label(skill: str) -> str:
    """How a need reads in a sentence ("domestic abuse", "anti-social behaviour")."""
    return NEED_LABELS[skill]


def event_types_for(skill: str) -> tuple[str, ...]:
    """The event types whose records call for `skill`, in contract order."""
    return tuple(name for name in EVENT_TYPE_ORDER if skill in EVENT_SKILLS[name])


@dataclass(frozen=True)
class _Known:
    """Known records within reach of the date, as integer columns."""

    household: np.ndarray
    event_type: np.ndarray
    age_days: np.ndarray
    value: np.ndarray
    n_households: int


def _known_records(events: pd.DataFrame, *, household_ids: pd.Index, as_of) -> _Known:
    encoded = encode_events(events, households=household_ids)
    as_of_day = day_number(pd.Timestamp(as_of))
    known = (encoded["known_day"].to_numpy() <= as_of_day) & (encoded["household"].to_numpy() >= 0)
    kept = encoded.loc[known]
    return _Known(
        household=kept["household"].to_numpy(np.int64),
        event_type=kept["event_type"].to_numpy(np.int64),
        age_days=as_of_day - kept["occurred_day"].to_numpy(np.int64),
        value=kept["value"].to_numpy(np.float64),
        n_households=len(household_ids),
    )


@dataclass(frozen=True)
class _Window:
    """Per household and event type, within one look-back: records, latest age, value total."""

    count: np.ndarray
    latest_age: np.ndarray
    total: np.ndarray


def _window(known: _Known, *, weeks: int) -> _Window:
    n_types = len(EVENT_TYPE_ORDER)
    inside = (known.age_days < weeks * 7) & (known.age_days >= 0)
    key = known.household[inside] * n_types + known.event_type[inside]
    size = known.n_households * n_types
    latest_age = np.full(size, NEVER, dtype=np.int64)
    np.minimum.at(latest_age, key, known.age_days[inside])
    total = np.bincount(key, weights=np.nan_to_num(known.value[inside]), minlength=size)
    return _Window(
        count=np.bincount(key, minlength=size).reshape(-1, n_types),
        latest_age=latest_age.reshape(-1, n_types),
        total=total.reshape(-1, n_types),
    )


def _latest_statements(known: _Known, *, event_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Each household's latest statement of a valued type: (balance, age in days); NaN / max when
    none. Two statements on one day: the larger balance counts as the later."""
    chosen = known.event_type == EVENT_TYPE_ORDER.index(event_type)
    households, ages, values = (
        known.household[chosen],
        known.age_days[chosen],
        known.value[chosen],
    )
    order = np.lexsort((values, -ages, households))
    households, ages, values = households[order], ages[order], values[order]
    last = np.r_[households[1:] != households[:-1], True] if len(households) else np.array([], bool)
    balance = np.full(known.n_households, np.nan)
    age = np.full(known.n_households, NEVER, dtype=np.int64)
    balance[households[last]] = values[last]
    age[households[last]] = ages[last]
    return balance, age


def _ago(days: np.ndarray) -> np.ndarray:
    """ "today", "yesterday", "9 days ago", "3 weeks ago" (look-backs are counted in weeks)."""
    text = np.strings.add((days // 7).astype(TEXT), " weeks ago")
    text = np.where(days < 14, np.strings.add(days.astype(TEXT), " days ago"), text)
    return np.where(days == 1, "yesterday", np.where(days == 0, "today", text)).astype(TEXT)


def _pounds(values: np.ndarray) -> np.ndarray:
    return np.array([f"£{value:,.0f}" for value in values], dtype=TEXT)


def _join(left: np.ndarray, right: np.ndarray, separator: str) -> np.ndarray:
    both = (np.strings.str_len(left) > 0) & (np.strings.str_len(right) > 0)
    joined = np.strings.add(np.where(both, np.strings.add(left, separator), left), right)
    return joined.astype(TEXT)


@dataclass(frozen=True)
class _Evidence:
    """One event type's part of a need: where it applies, its latest record's age, its figure
    (records counted, latest balance or sessions missed)."""

    name: str
    applies: np.ndarray
    latest_age: np.ndarray
    figure: np.ndarray

    def text(self, rows: np.ndarray) -> np.ndarray:
        """The part's words for the chosen rows ("" where it does not apply)."""
        figure, applies = self.figure[rows], self.applies[rows]
        _, one, many = _EVENT_NEEDS[self.name]
        if self.name in ARREARS_TYPES:
            text = np.strings.add(f"{one} of ", _pounds(figure))
        else:
            whole = np.rint(figure).astype(np.int64)
            noun = np.where(whole == 1, one, many).astype(TEXT)
            text = np.strings.add(np.strings.add(whole.astype(TEXT), " "), noun)
        return np.where(applies, text, "").astype(TEXT)


def _counted_evidence(window: _Window, position: int) -> _Evidence:
    count = window.count[:, position]
    return _Evidence(EVENT_TYPE_ORDER[position], count > 0, window.latest_age[:, position], count)


def _arrears_evidence(known: _Known, name: str, *, weeks: int, threshold: float) -> _Evidence:
    balance, age = _latest_statements(known, event_type=name)
    return _Evidence(name, (age < weeks * 7) & (balance > threshold), age, balance)


def _absence_evidence(window: _Window, *, sessions: float) -> _Evidence:
    position = EVENT_TYPE_ORDER.index(ABSENCE_TYPE)
    total = window.total[:, position]
    applies = (window.count[:, position] > 0) & (total >= sessions - 1e-9)
    return _Evidence(ABSENCE_TYPE, applies, window.latest_age[:, position], total)


def _need_evidence(
    known: _Known, window: _Window, skill: str, *, settings: NeedsSettings
) -> list[_Evidence]:
    weeks = settings.lookback_weeks[skill]
    parts = []
    for name in event_types_for(skill):
        if name in ARREARS_TYPES:
            threshold = settings.arrears_threshold
            parts.append(_arrears_evidence(known, name, weeks=weeks, threshold=threshold))
        elif name == ABSENCE_TYPE:
            parts.append(_absence_evidence(window, sessions=settings.absence_sessions()))
        else:
            parts.append(_counted_evidence(window, EVENT_TYPE_ORDER.index(name)))
    return parts


def _need_text(skill: str, parts: list[_Evidence]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each household has the need, and its evidence sentence ("" when it has not)."""
    has = np.logical_or.reduce([part.applies for part in parts])
    rows = np.flatnonzero(has)
    latest = np.min([np.where(p.applies[rows], p.latest_age[rows], NEVER) for p in parts], axis=0)
    body = np.full(len(rows), "", dtype=TEXT)
    for part in parts:
        body = _join(body, part.text(rows), ", ")
    text = np.full(len(has), "", dtype=TEXT)
    latest_phrase = np.strings.add(", latest ", _ago(latest))
    text[rows] = np.strings.add(np.strings.add(f"{need_label(skill)}: ", body), latest_phrase)
    return has, text


def _needs_text(has: np.ndarray) -> np.ndarray:
    """ ";"-joined needs per household (columns of `has` in SKILLS order)."""
    masks = has.astype(np.int64) @ (1 << np.arange(len(SKILLS), dtype=np.int64))
    distinct, inverse = np.unique(masks, return_inverse=True)
    texts = [
        NEEDS_SEPARATOR.join(s for bit, s in enumerate(SKILLS) if mask >> bit & 1)
        for mask in distinct
    ]
    return np.array(texts, dtype=object)[inverse.reshape(-1)]


def _needs_and_evidence(known: _Known, settings: NeedsSettings) -> tuple[np.ndarray, np.ndarray]:
    """(households x SKILLS) whether each need holds, and each household's evidence text."""
    windows = {
        weeks: _window(known, weeks=weeks)
        for weeks in sorted(set(settings.lookback_weeks.values()))
    }
    has = np.zeros((known.n_households, len(SKILLS)), dtype=bool)
    texts = []
    for column, skill in enumerate(SKILLS):
        if not event_types_for(skill):
            continue
        window = windows[settings.lookback_weeks[skill]]
        parts = _need_evidence(known, window, skill, settings=settings)
        has[:, column], text = _need_text(skill, parts)
        texts.append(text)
    # Sentences are joined only for households with a need (most have none).
    rows = np.flatnonzero(has.any(axis=1))
    joined = np.full(len(rows), "", dtype=TEXT)
    for text in texts:
        joined = _join(joined, text[rows], EVIDENCE_SEPARATOR)
    evidence = np.full(known.n_households, "", dtype=TEXT)
    evidence[rows] = joined
    return has, evidence


def household_needs(
    events: pd.DataFrame,
    *,
    household_ids,
    as_of,
    settings: NeedsSettings | None = None,
) -> pd.DataFrame:
    """Needs and their evidence for each household in `household_ids`, from its own records.

    `events` is the contract's events table (other households' rows are ignored). Returns a frame
    indexed by household_id (in the given order) with `needs` (";"-joined, SKILLS order, "" for
    none) and `needs_evidence` (one sentence per need, same order, joined by " | ").
    """
    household_ids = pd.Index(household_ids, name="household_id")
    known = _known_records(events, household_ids=household_ids, as_of=as_of)
    has, evidence = _needs_and_evidence(known, settings or NeedsSettings())
    return pd.DataFrame(
        {
            "needs": pd.array(_needs_text(has), dtype="str"),
            "needs_evidence": pd.array(evidence.astype(object), dtype="str"),
        },
        index=household_ids,
    )


def needs_of_records(
    *,
    event_type: np.ndarray,
    occurred_at: np.ndarray,
    known_at: np.ndarray,
    value: np.ndarray,
    as_of,
    settings: NeedsSettings | None = None,
) -> list[tuple[str, str]]:
    """One household's needs as (need, evidence) pairs in needs order, from its records as
    columns (a single household's explanation: no table to build). Same rule as household_needs."""
    as_of_day = day_number(pd.Timestamp(as_of))
    days = np.asarray(as_of_day, dtype=np.int64)
    occurred = np.asarray(occurred_at, dtype="datetime64[D]").astype(np.int64)
    known_day = np.asarray(known_at, dtype="datetime64[D]").astype(np.int64)
    kept = known_day <= days
    known = _Known(
        household=np.zeros(int(kept.sum()), dtype=np.int64),
        event_type=np.array([EVENT_CODE[name] for name in np.asarray(event_type)[kept]], np.int64),
        age_days=days - occurred[kept],
        value=np.asarray(value, dtype=np.float64)[kept],
        n_households=1,
    )
    has, evidence = _needs_and_evidence(known, settings or NeedsSettings())
    named = [skill for skill, flag in zip(SKILLS, has[0], strict=True) if flag]
    texts = str(evidence[0]).split(EVIDENCE_SEPARATOR) if named else []
    return list(zip(named, texts, strict=True))
