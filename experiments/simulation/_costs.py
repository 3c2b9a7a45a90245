"""The unit cost table (experiments/simulation/costs.toml) and cost avoided by agency.

Cost avoided by agency = (events under the no-new-cases baseline - events under the policy) x
unit cost, summed over event types; the total is the sum of the agencies by construction.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import EVENT_TYPES, SOURCES

COSTS_PATH = Path(__file__).with_name("costs.toml")
META_KEYS = ("price_year", "currency")


def load_unit_costs(path: Path | str = COSTS_PATH) -> pd.DataFrame:
    """(event types x agencies) GBP per event, rows in contract order; ValueError naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: not a readable unit cost table ({error})") from None
    tables = {key: value for key, value in raw.items() if key not in META_KEYS}
    problems = [
        f"[{name}] is not a contract event type" for name in tables if name not in EVENT_TYPES
    ]
    problems += [f"[{name}] is missing" for name in EVENT_TYPES if name not in tables]
    for name, entry in tables.items():
        if not isinstance(entry, dict) or not str(entry.get("source", "")).strip():
            problems.append(f"[{name}] needs a source line")
            continue
        for agency, cost in entry.items():
            if agency == "source":
                continue
            if agency not in SOURCES:
                problems.append(f"[{name}] {agency}: not a contract agency (source)")
            elif not isinstance(cost, int | float) or cost < 0:
                problems.append(f"[{name}] {agency}: cost must be a number >= 0")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    costs = pd.DataFrame(0.0, index=pd.Index(list(EVENT_TYPES), name="event_type"), columns=SOURCES)
    for name, entry in tables.items():
        for agency, cost in entry.items():
            if agency != "source":
                costs.loc[name, agency] = float(cost)
    return costs


def cost_sources(path: Path | str = COSTS_PATH) -> dict[str, str]:
    """The source line of each event type's costs."""
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return {name: str(raw[name]["source"]) for name in EVENT_TYPES}


def cost_avoided_by_agency(
    *, baseline_events: pd.Series, policy_events: pd.Series, unit_costs: pd.DataFrame
) -> pd.Series:
    """GBP avoided per agency: events avoided per type times each agency's unit cost."""
    types = unit_costs.index
    avoided = baseline_events.reindex(types, fill_value=0).astype(
        np.float64
    ) - policy_events.reindex(types, fill_value=0).astype(np.float64)
    return (unit_costs.mul(avoided, axis=0)).sum(axis=0).rename("cost_avoided")
