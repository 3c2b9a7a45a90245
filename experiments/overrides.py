"""Manager overrides: what the service records when a manager decides on a proposal, and the
override and agreement rates that show how the tool is used.

`override_record` is what the service stores every time a manager decides on a proposal: the risk
and reasons that were on screen, what the tool proposed and what the manager chose.
`summarise_overrides` turns those records into override and agreement rates by locality and risk
band, so the effect of the tool on decisions can be evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

# Shown-risk bands (lower edges): the reviewed bands managers see next to the score.
from models.explain import RISK_BANDS

DECISIONS: tuple[str, ...] = ("accepted", "changed_worker", "not_allocated", "added")
OVERRIDE_FIELDS: tuple[str, ...] = (
    "recorded_at",
    "household_id",
    "locality",
    "model_version",
    "shown_risk",
    "risk_band",
    "shown_reasons",
    "proposed_worker",
    "chosen_worker",
    "decision",
    "overridden",
    "reason",
    "manager",
)


def override_record(
    *,
    household_id: str,
    shown_risk: float,
    shown_reasons: Sequence[str],
    proposed_worker: str | None,
    chosen_worker: str | None,
    decision: str,
    reason: str,
    manager: str,
    locality: str | None = None,
    model_version: str | None = None,
    recorded_at: datetime | str | None = None,
    shown_band: str | None = None,
) -> dict[str, object]:
    """A manager's decision on one household, with what the tool showed; JSON-ready.

    decision: "accepted" (the proposed worker), "changed_worker" (another worker),
    "not_allocated" (a proposed household not allocated) or "added" (a household the tool did
    not propose). A reason is required for everything but "accepted". shown_band: the band the
    screen showed (default: the band of shown_risk with RISK_BANDS).
    """
    _check_override(
        household_id=household_id,
        shown_risk=shown_risk,
        proposed_worker=proposed_worker,
        chosen_worker=chosen_worker,
        decision=decision,
        reason=reason,
        manager=manager,
    )
    when = recorded_at or datetime.now(UTC).replace(microsecond=0)
    values = {
        "recorded_at": when.isoformat() if isinstance(when, datetime) else str(when),
        "household_id": str(household_id),
        "locality": None if locality is None else str(locality),
        "model_version": None if model_version is None else str(model_version),
        "shown_risk": float(shown_risk),
        "risk_band": shown_band or risk_band(float(shown_risk)),
        "shown_reasons": [str(text) for text in shown_reasons],
        "proposed_worker": proposed_worker,
        "chosen_worker": chosen_worker,
        "decision": decision,
        "overridden": decision != "accepted",
        "reason": (reason or "").strip(),
        "manager": str(manager),
    }
    return {name: values[name] for name in OVERRIDE_FIELDS}


def _check_override(
    *, household_id, shown_risk, proposed_worker, chosen_worker, decision, reason, manager
) -> None:
    if not household_id or not manager:
        raise ValueError("override record: household_id and manager are required")
    if not (_is_number(shown_risk) and 0.0 <= float(shown_risk) <= 1.0):
        raise ValueError(f"override record: shown_risk must be a probability, not {shown_risk!r}")
    if decision not in DECISIONS:
        raise ValueError(f"override record: decision must be one of {DECISIONS}, not {decision!r}")
    expected = {
        "accepted": proposed_worker is not None and chosen_worker == proposed_worker,
        "changed_worker": None not in (proposed_worker, chosen_worker)
        and chosen_worker != proposed_worker,
        "not_allocated": proposed_worker is not None and chosen_worker is None,
        "added": proposed_worker is None and chosen_worker is not None,
    }[decision]
    if not expected:
        raise ValueError(
            f"override record: decision {decision!r} does not match proposed worker "
            f"{proposed_worker!r} and chosen worker {chosen_worker!r}"
        )
    if decision != "accepted" and not (reason or "").strip():
        raise ValueError(f"override record: a reason is required when the decision is {decision}")


def risk_band(shown_risk: float, *, bands: Sequence[tuple[float, str]] = RISK_BANDS) -> str:
    """The band of a shown risk: the last band whose lower edge it reaches."""
    edges = [edge for edge, _ in bands]
    return bands[max(0, int(np.searchsorted(edges, shown_risk, side="right")) - 1)][1]


def summarise_overrides(
    overrides: pd.DataFrame, *, bands: Sequence[tuple[float, str]] = RISK_BANDS
) -> pd.DataFrame:
    """Override and agreement rates overall, by locality, by risk band and by manager.

    One row per (dimension, group): decisions, proposed (decisions on proposed households),
    accepted, changed_worker, not_allocated, added, override_rate (share of decisions that
    differ from the proposal) and agreement_rate (share of proposals accepted as proposed).
    """
    required = ("shown_risk", "decision", "locality", "manager")
    missing = [column for column in required if column not in overrides.columns]
    if missing:
        raise ValueError(f"overrides: missing column(s) {', '.join(missing)}")
    unknown = sorted(set(overrides["decision"].dropna()) - set(DECISIONS))
    if unknown or overrides["decision"].isna().any():
        raise ValueError(f"overrides: decision must be one of {DECISIONS}; found {unknown}")
    labelled = overrides.assign(
        all="all",
        locality=overrides["locality"].fillna("unknown").astype("str"),
        risk_band=[risk_band(float(value), bands=bands) for value in overrides["shown_risk"]],
        manager=overrides["manager"].astype("str"),
    )
    band_order = {name: position for position, (_, name) in enumerate(bands)}
    frames = [
        _override_rates(labelled, dimension=dimension, order=order)
        for dimension, order in (
            ("all", None),
            ("locality", None),
            ("risk_band", band_order),
            ("manager", None),
        )
    ]
    return pd.concat(frames, ignore_index=True)


def _override_rates(
    labelled: pd.DataFrame, *, dimension: str, order: Mapping[str, int] | None
) -> pd.DataFrame:
    counts = pd.crosstab(labelled[dimension], labelled["decision"]).reindex(
        columns=list(DECISIONS), fill_value=0
    )
    decisions = counts.sum(axis=1)
    proposed = decisions - counts["added"]
    table = counts.assign(
        decisions=decisions,
        proposed=proposed,
        override_rate=(decisions - counts["accepted"]) / decisions,
        agreement_rate=counts["accepted"] / proposed.where(proposed > 0),
    )
    table = table.rename_axis("group").reset_index().assign(dimension=dimension)
    if order is not None:
        table = table.sort_values("group", key=lambda names: names.map(order), ignore_index=True)
    columns = ["dimension", "group", "decisions", "proposed", *DECISIONS]
    return table[[*columns, "override_rate", "agreement_rate"]]


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)
