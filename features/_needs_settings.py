"""How needs are read from records: the settings (the `[needs]` table of rebalance.toml).

Kept apart from features.needs, which applies them; import both from features.needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from features.contract import SKILLS

SCHOOL_SESSIONS_PER_YEAR = 380  # 190 school days, morning and afternoon
LONG_LOOKBACK_NEEDS: tuple[str, ...] = ("domestic_abuse", "parenting", "mental_health")
DEFAULT_LOOKBACK_WEEKS: Mapping[str, int] = MappingProxyType(
    {skill: 52 if skill in LONG_LOOKBACK_NEEDS else 26 for skill in SKILLS}
)
# The needs a household must be matched on by a worker with the same skill (the allocation's
# safeguarding rule, allocation.rules), unless the council's [needs] safeguarding says otherwise.
DEFAULT_SAFEGUARDING: tuple[str, ...] = ("domestic_abuse",)
SETTING_NAMES: tuple[str, ...] = (
    "lookback_weeks",
    "arrears_threshold",
    "persistent_absence_share",
    "safeguarding",
)


@dataclass(frozen=True)
class NeedsSettings:
    """How needs are read from records (the `[needs]` table of rebalance.toml; docs/reasons.md).

    `lookback_weeks` may name only some needs; the others keep their defaults. `safeguarding` is
    the set of needs the council marks as safeguarding: such a household goes only to a worker
    with that skill (the allocation's rule takes it from here).
    """

    lookback_weeks: Mapping[str, int] = field(default_factory=dict)
    arrears_threshold: float = 500.0
    persistent_absence_share: float = 0.10
    safeguarding: tuple[str, ...] = DEFAULT_SAFEGUARDING

    def __post_init__(self) -> None:
        problems = _settings_problems(self)
        if problems:
            raise ValueError("needs settings: " + "; ".join(problems))
        lookback = dict(DEFAULT_LOOKBACK_WEEKS) | {
            k: int(v) for k, v in self.lookback_weeks.items()
        }
        object.__setattr__(self, "lookback_weeks", MappingProxyType(lookback))
        chosen = set(self.safeguarding)
        object.__setattr__(self, "safeguarding", tuple(s for s in SKILLS if s in chosen))

    def absence_sessions(self) -> float:
        """Sessions missed within the look-back that make persistent absence."""
        weeks = self.lookback_weeks["school_attendance"]
        return self.persistent_absence_share * SCHOOL_SESSIONS_PER_YEAR * weeks / 52

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "lookback_weeks": dict(self.lookback_weeks),
            "arrears_threshold": self.arrears_threshold,
            "persistent_absence_share": self.persistent_absence_share,
            "safeguarding": list(self.safeguarding),
        }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _settings_problems(settings: NeedsSettings) -> list[str]:
    problems = []
    if not isinstance(settings.lookback_weeks, Mapping):
        problems.append("lookback_weeks must map needs to weeks")
    else:
        for skill, weeks in settings.lookback_weeks.items():
            if skill not in SKILLS:
                problems.append(f"lookback_weeks: {skill!r} is not a need ({', '.join(SKILLS)})")
            elif not isinstance(weeks, int) or isinstance(weeks, bool) or not 1 <= weeks <= 520:
                problems.append(f"lookback_weeks.{skill} must be whole weeks, 1 to 520 ({weeks!r})")
    if not _is_number(settings.arrears_threshold) or not settings.arrears_threshold >= 0:
        problems.append(
            f"arrears_threshold must be pounds, 0 or more ({settings.arrears_threshold!r})"
        )
    share = settings.persistent_absence_share
    if not _is_number(share) or not 0 < share <= 1:
        problems.append(f"persistent_absence_share must be in (0, 1] ({share!r})")
    if isinstance(settings.safeguarding, str) or not hasattr(settings.safeguarding, "__iter__"):
        problems.append("safeguarding must be a list of needs")
    else:
        problems += [
            f"safeguarding: {skill!r} is not a need ({', '.join(SKILLS)})"
            for skill in settings.safeguarding
            if skill not in SKILLS
        ]
    return problems


def needs_settings_from_mapping(mapping: Mapping[str, Any] | None) -> NeedsSettings:
    """NeedsSettings from the `[needs]` table of rebalance.toml (missing keys keep defaults).

    Raises ValueError naming every bad key or value.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(SETTING_NAMES))
    if unknown:
        raise ValueError(
            f"[needs]: unknown setting(s) {', '.join(unknown)}; use {', '.join(SETTING_NAMES)}"
        )
    if "lookback_weeks" in mapping and not isinstance(mapping["lookback_weeks"], Mapping):
        raise ValueError("[needs] lookback_weeks must be a table of need = weeks")
    if isinstance(mapping.get("safeguarding"), str):
        raise ValueError('[needs] safeguarding must be a list, e.g. ["domestic_abuse"]')
    try:
        return NeedsSettings(**mapping)
    except ValueError as error:
        raise ValueError(f"[needs]: {str(error).removeprefix('needs settings: ')}") from None
