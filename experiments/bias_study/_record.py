"""The demo champion's transparency record, trained and promoted on a synthetic city."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from experiments.city import generate_city
from experiments.fairness import (
    FairnessGate,
)
from experiments.promotion import PromotionDecision, promote
from experiments.registry import train
from features.contract import TABLE_NAMES
from models import TrainSettings


def write_demo_record(
    *,
    households: int,
    seed: int,
    end: date,
    out: str | Path,
    settings: TrainSettings | None = None,
    gate: FairnessGate | None = None,
) -> PromotionDecision:
    """Train and promote the demo champion exactly as `rebalance demo` does, copy its record.

    The city, training, bias audit, gates and record are the product's own (in a scratch
    REBALANCE_HOME); the record is generated, never edited by hand.
    """
    settings = settings or TrainSettings()
    city = generate_city(households=households, seed=seed, end=end)
    tables = {name: table for name, table in city.tables().items() if name in TABLE_NAMES}
    with tempfile.TemporaryDirectory(prefix="rebalance-demo-record-") as home:
        train(
            tables=tables,
            snapshot_id=f"demo-city-{households}-{seed}",
            as_of=city.end,
            settings=settings,
            home=home,
            truth=city.truth,
            fairness=gate,
        )
        decision = promote(home=home, settings=settings, fairness=gate)
        if not decision.promoted:
            raise ValueError(f"the demo model was not promoted: {decision.message}")
        record = Path(decision.records[-1]).read_text(encoding="utf-8")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record, encoding="utf-8")
    return decision
