"""Under-reporting: groups of households whose events partners record less often."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from experiments.city._events import (
    EVENT_NAMES,
)
from experiments.city._places import WARDS
from experiments.city._population import Population
from features.contract import (
    ETHNICITIES,
    EVENT_TYPES,
    LOCALITIES,
    TENURES,
)

# {group: {event type: probability that such an event is recorded}}; see parse_under_reporting.
UnderReporting = Mapping[str, Mapping[str, float]]
_GROUP_COLUMNS = ("ethnicity", "locality", "ward", "tenure")


def parse_under_reporting(spec: str) -> dict[str, dict[str, float]]:
    """Parse 'GROUP:TYPE=P,TYPE=P;GROUP:...' (e.g. 'asian:police_callout=0.6') for a CLI flag."""
    parsed: dict[str, dict[str, float]] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(";"))):
        group, separator, rules = part.partition(":")
        if not separator or not rules.strip():
            raise ValueError(f"under-reporting {part!r}: expected GROUP:EVENT_TYPE=PROBABILITY")
        for rule in rules.split(","):
            event_type, equals, probability = rule.strip().partition("=")
            if not equals:
                raise ValueError(f"under-reporting {rule!r}: expected EVENT_TYPE=PROBABILITY")
            try:
                parsed.setdefault(group.strip(), {})[event_type.strip()] = float(probability)
            except ValueError:
                raise ValueError(
                    f"under-reporting {rule!r}: {probability!r} is not a number"
                ) from None
    return parsed


def _group_members(population: Population, key: str) -> np.ndarray:
    """Households in an under-reporting group: 'COLUMN=VALUE', or a bare ethnicity value.

    A household's ethnicity is its reference person's (its first and oldest member's).
    """
    column, _, value = key.rpartition("=") if "=" in key else ("ethnicity", "=", key)
    vocabulary = {
        "ethnicity": (ETHNICITIES, population.person_ethnicity[population.first_person]),
        "locality": (LOCALITIES, population.locality),
        "ward": (tuple(ward.name for ward in WARDS), population.ward),
        "tenure": (TENURES, population.tenure),
    }
    if column not in vocabulary:
        raise ValueError(f"under_reporting group {key!r}: column must be one of {_GROUP_COLUMNS}")
    names, codes = vocabulary[column]
    if value not in names:
        raise ValueError(f"under_reporting group {key!r}: {value!r} is not a known {column}")
    return codes == names.index(value)


def keep_probability(
    population: Population, under_reporting: UnderReporting | None
) -> np.ndarray | None:
    """(households, EVENT_NAMES) chance that an event is recorded, or None if all are."""
    if not under_reporting:
        return None
    keep = np.ones((population.size, len(EVENT_NAMES)))
    for group in sorted(under_reporting):
        members = _group_members(population, group)
        for event_type, probability in sorted(under_reporting[group].items()):
            if event_type not in EVENT_TYPES:
                raise ValueError(f"under_reporting[{group!r}]: unknown event type {event_type!r}")
            if not 0.0 <= float(probability) <= 1.0:
                raise ValueError(
                    f"under_reporting[{group!r}][{event_type!r}] = {probability}: "
                    "a reporting probability must be between 0 and 1"
                )
            keep[members, EVENT_NAMES.index(event_type)] *= float(probability)
    return keep
