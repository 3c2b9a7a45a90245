"""Data contract v1: the tables, columns, types and vocabularies partners send.

This module is the single source of truth for the contract in code: validation, the synthetic city,
features and labels all read their vocabularies from here.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT_VERSION = "1"

LOCALITIES: tuple[str, ...] = ("Tunstall", "Burslem", "Hanley", "Stoke", "Fenton", "Longton")
TENURES: tuple[str, ...] = (
    "council",
    "housing_association",
    "private_rent",
    "owner",
    "temporary",
    "unknown",
)
SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")
ETHNICITIES: tuple[str, ...] = ("white", "mixed", "asian", "black", "other", "unknown")
DISABILITY: tuple[str, ...] = ("yes", "no", "unknown")
SOURCES: tuple[str, ...] = (
    "council_housing",
    "council_tax",
    "police",
    "fire",
    "nhs",
    "education",
    "dwp",
    "social_care",
    "probation",
)
SKILLS: tuple[str, ...] = (
    "debt",
    "housing",
    "domestic_abuse",
    "substance_misuse",
    "mental_health",
    "parenting",
    "youth",
    "school_attendance",
    "employment",
    "asb",
)
CLOSE_REASONS: tuple[str, ...] = (
    "resolved",
    "no_further_progress",
    "moved_away",
    "declined",
    "transferred",
)
PROTECTED_COLUMNS: tuple[str, ...] = ("sex", "ethnicity", "disability", "birth_year")


@dataclass(frozen=True)
class EventKind:
    """One row of the contract's event vocabulary."""

    source: str
    has_value: bool
    crisis: bool


EVENT_TYPES: dict[str, EventKind] = {
    "rent_arrears": EventKind("council_housing", True, False),
    "council_tax_arrears": EventKind("council_tax", True, False),
    "eviction_notice": EventKind("council_housing", False, False),
    "possession_order": EventKind("council_housing", False, True),
    "homelessness_presentation": EventKind("council_housing", False, True),
    "asb_report": EventKind("police", False, False),
    "domestic_abuse_incident": EventKind("police", False, False),
    "police_callout": EventKind("police", False, False),
    "arrest": EventKind("police", False, True),
    "missing_person": EventKind("police", False, False),
    "fire_callout": EventKind("fire", False, False),
    "deliberate_fire": EventKind("fire", False, True),
    "school_absence": EventKind("education", True, False),
    "school_exclusion": EventKind("education", False, False),
    "ae_attendance": EventKind("nhs", False, False),
    "emergency_admission": EventKind("nhs", False, True),
    "mental_health_crisis": EventKind("nhs", False, True),
    "benefit_sanction": EventKind("dwp", False, False),
    "unemployment_claim": EventKind("dwp", False, False),
    "social_care_contact": EventKind("social_care", False, False),
    "child_protection_plan": EventKind("social_care", False, True),
    "child_taken_into_care": EventKind("social_care", False, True),
    "probation_breach": EventKind("probation", False, False),
}

CRISIS_EVENT_TYPES: tuple[str, ...] = tuple(
    name for name, kind in EVENT_TYPES.items() if kind.crisis
)
VALUED_EVENT_TYPES: tuple[str, ...] = tuple(
    name for name, kind in EVENT_TYPES.items() if kind.has_value
)


@dataclass(frozen=True)
class Column:
    """A contract column: its logical type, whether it may be empty, and its allowed values."""

    name: str
    kind: str  # one of: id, str, enum, int, float, date, bool, skills
    optional: bool = False
    allowed: tuple[str, ...] = ()
    minimum: int | None = None


TABLES: dict[str, tuple[Column, ...]] = {
    "households": (
        Column("household_id", "id"),
        Column("locality", "str"),
        Column("ward", "str"),
        Column("tenure", "enum", allowed=TENURES),
        Column("adults", "int", minimum=0),
        Column("children", "int", minimum=0),
    ),
    "people": (
        Column("person_id", "id"),
        Column("household_id", "str"),
        Column("birth_year", "int"),
        Column("sex", "enum", allowed=SEXES),
        Column("ethnicity", "enum", allowed=ETHNICITIES),
        Column("disability", "enum", allowed=DISABILITY),
    ),
    "events": (
        Column("event_id", "id"),
        Column("household_id", "str"),
        Column("person_id", "str", optional=True),
        Column("source", "enum", allowed=SOURCES),
        Column("event_type", "enum", allowed=tuple(EVENT_TYPES)),
        Column("occurred_at", "date"),
        Column("known_at", "date"),
        Column("value", "float", optional=True),
    ),
    "workers": (
        Column("worker_id", "id"),
        Column("locality", "str"),
        Column("skills", "skills", allowed=SKILLS),
        Column("capacity_points", "int", minimum=1),
        Column("active", "bool"),
    ),
    "cases": (
        Column("case_id", "id"),
        Column("household_id", "str"),
        Column("worker_id", "str"),
        Column("opened_at", "date"),
        Column("closed_at", "date", optional=True),
        Column("complexity_points", "int", minimum=1),
        Column("close_reason", "enum", optional=True, allowed=CLOSE_REASONS),
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def column_names(table: str) -> list[str]:
    """The contract's column names of a table, in contract order."""
    return [column.name for column in TABLES[table]]


# The in-memory form of every loaded table: what the store returns and what every stage may assume.
# Optional strings are missing as NA, optional dates as NaT, an empty value as NaN.
PANDAS_DTYPES: dict[str, str] = {
    "id": "str",
    "str": "str",
    "enum": "str",
    "skills": "str",
    "int": "int64",
    "float": "float64",
    "date": "datetime64[ns]",
    "bool": "bool",
}


def table_dtypes(table: str) -> dict[str, str]:
    """Column name -> canonical pandas dtype for one contract table."""
    return {column.name: PANDAS_DTYPES[column.kind] for column in TABLES[table]}
