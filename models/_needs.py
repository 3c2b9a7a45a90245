"""Which key-worker skills a household's recent records point to (the `needs` column of scores).

One reviewed mapping from contract event types to contract skills. Event types that do not point to
a single need (a police call-out, a fire call-out, an A&E attendance, an emergency admission) map
to nothing rather than to a guess. No contract v1 event points to substance misuse, so that need is
never inferred. The allocation engine matches these needs against workers' skills.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import ARREARS_TYPES
from features.contract import EVENT_TYPES, SKILLS

NEEDS_WINDOW_WEEKS = 26

NEEDS_BY_EVENT_TYPE: dict[str, tuple[str, ...]] = {
    "rent_arrears": ("debt",),
    "council_tax_arrears": ("debt",),
    "eviction_notice": ("housing",),
    "possession_order": ("housing",),
    "homelessness_presentation": ("housing",),
    "asb_report": ("asb",),
    "domestic_abuse_incident": ("domestic_abuse",),
    "police_callout": (),
    "arrest": ("asb",),
    "missing_person": ("youth",),
    "fire_callout": (),
    "deliberate_fire": ("asb",),
    "school_absence": ("school_attendance",),
    "school_exclusion": ("school_attendance", "youth"),
    "ae_attendance": (),
    "emergency_admission": (),
    "mental_health_crisis": ("mental_health",),
    "benefit_sanction": ("employment", "debt"),
    "unemployment_claim": ("employment",),
    "social_care_contact": ("parenting",),
    "child_protection_plan": ("parenting",),
    "child_taken_into_care": ("parenting",),
    "probation_breach": ("asb",),
}


def _check_mapping() -> None:
    if set(NEEDS_BY_EVENT_TYPE) != set(EVENT_TYPES):
        raise RuntimeError("NEEDS_BY_EVENT_TYPE must map every contract event type")
    unknown = {skill for skills in NEEDS_BY_EVENT_TYPE.values() for skill in skills} - set(SKILLS)
    if unknown:
        raise RuntimeError(f"NEEDS_BY_EVENT_TYPE uses skills outside the contract: {unknown}")


_check_mapping()


def _recent_indicators(features: pd.DataFrame) -> pd.DataFrame:
    recent = {
        name: features[f"{name}_count_{NEEDS_WINDOW_WEEKS}w"].to_numpy() > 0
        for name in NEEDS_BY_EVENT_TYPE
    }
    # An arrears record only signals a debt need while the latest balance is still owed.
    for name in ARREARS_TYPES:
        recent[name] = recent[name] & (features[f"{name}_balance_latest"].to_numpy() > 0)
    return pd.DataFrame(recent, index=features.index)


def household_needs(features: pd.DataFrame) -> pd.Series:
    """Semicolon-separated skills (contract order) each household's last 26 weeks point to."""
    recent = _recent_indicators(features).to_numpy()
    event_types = list(NEEDS_BY_EVENT_TYPE)
    # Bit i of a household's code is set when it has a record pointing to SKILLS[i].
    skill_bits = np.array(
        [
            sum(1 << SKILLS.index(skill) for skill in NEEDS_BY_EVENT_TYPE[name])
            for name in event_types
        ],
        dtype=np.int64,
    )
    codes = np.bitwise_or.reduce(np.where(recent, skill_bits, 0), axis=1)
    distinct, inverse = np.unique(codes, return_inverse=True)
    texts = np.array(
        [";".join(s for i, s in enumerate(SKILLS) if code >> i & 1) for code in distinct],
        dtype=object,
    )
    return pd.Series(texts[inverse], index=features.index, name="needs", dtype="str")
