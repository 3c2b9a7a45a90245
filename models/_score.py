"""Weekly scoring: one row per household with risk, rank, needs, reasons and current key worker.

Rank 1 is the highest risk. Isotonic calibration maps bands of raw scores to one probability, so
households are ranked by the booster's raw score (which the calibrated risk never contradicts: the
calibration is monotone) and then by household_id, so the same inputs always give the same list.
Reasons come from models.explain (TreeSHAP contributions written with the reviewed templates).
Needs come from the household's own records as of the date (features.needs: every record of a
mapped type within its look-back, arrears above a threshold, persistent school absence), with the
evidence for each need in `needs_evidence`; they are no longer limited to the reasons shown.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import features_as_of, prepare_tables
from features.cases import open_cases
from features.needs import NeedsSettings, household_needs
from models._metrics import ranking_order
from models._persist import ChampionModel
from models.explain import explain_households

SCORE_COLUMNS: tuple[str, ...] = (
    "household_id",
    "locality",
    "risk",
    "rank",
    "needs",
    "needs_evidence",
    "reasons",
    "reason_groups",
    "open_case_worker",
    "model_version",
)


def open_case_workers(cases: pd.DataFrame, *, as_of) -> pd.Series:
    """worker_id of each household's case open on `as_of` (households without one are absent)."""
    open_now = open_cases(cases, as_of=as_of)
    # The contract allows one open case per household; if the data disagree the latest wins.
    latest = open_now.sort_values(["household_id", "opened_at", "case_id"]).drop_duplicates(
        "household_id", keep="last"
    )
    return latest.set_index("household_id")["worker_id"]


def score_features(
    *,
    features: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    model: ChampionModel,
    needs_settings: NeedsSettings | None = None,
) -> pd.DataFrame:
    """Scores for households whose features (indexed by household_id) are already built.

    `needs` and `needs_evidence` come from `tables["events"]` under `needs_settings` (the
    `[needs]` table of rebalance.toml; default: the product's defaults)."""
    estimator = model.estimator
    raw_score = estimator.predict_raw(features)
    household_ids = features.index.to_numpy(dtype=object)
    rank = np.empty(len(features), dtype=np.int64)
    rank[ranking_order(raw_score, household_ids)] = np.arange(1, len(features) + 1)
    explained = explain_households(
        booster=estimator.booster_, features=features, tables=tables, as_of=as_of
    ).set_index("household_id")
    localities = tables["households"].set_index("household_id")["locality"]
    needs = household_needs(
        tables["events"], household_ids=features.index, as_of=as_of, settings=needs_settings
    )
    scores = pd.DataFrame(
        {
            "household_id": features.index.astype("str"),
            "locality": localities.reindex(features.index).to_numpy(),
            "risk": estimator.calibrator_.predict(raw_score),
            "rank": rank,
            "needs": needs["needs"].to_numpy(),
            "needs_evidence": needs["needs_evidence"].to_numpy(),
            "reasons": explained["reasons"].reindex(features.index).to_numpy(),
            "reason_groups": explained["reason_groups"].reindex(features.index).to_numpy(),
            "open_case_worker": open_case_workers(tables["cases"], as_of=as_of)
            .reindex(features.index)
            .to_numpy(),
            "model_version": str(model.version),
        }
    )
    return scores.sort_values("rank").reset_index(drop=True)[list(SCORE_COLUMNS)]


def score_households(
    *,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    model: ChampionModel,
    needs_settings: NeedsSettings | None = None,
) -> pd.DataFrame:
    """Score every household as of `as_of` (only records known by then), highest risk first."""
    features = features_as_of(prepare_tables(tables), as_of=as_of)
    return score_features(
        features=features, tables=tables, as_of=as_of, model=model, needs_settings=needs_settings
    )


TEXT_COLUMNS: tuple[str, ...] = (
    "household_id",
    "locality",
    "needs",
    "needs_evidence",
    "reasons",
    "reason_groups",
    "open_case_worker",
    "model_version",
)


def read_scores(path: str | Path) -> pd.DataFrame:
    """A scores.csv as write_scores wrote it, in the same dtypes (ids and texts as strings).

    Runs written before scores named their reason groups, or before needs had their evidence,
    are read with none.
    """
    path = Path(path)
    scores = pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, "str"))
    for column in ("reason_groups", "needs_evidence"):
        if column not in scores.columns:
            scores[column] = pd.Series(pd.NA, index=scores.index, dtype="str")
    missing = [column for column in SCORE_COLUMNS if column not in scores.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return scores


def write_scores(scores: pd.DataFrame, out: str | Path) -> Path:
    """Write scores as CSV (risk to 6 decimals), atomically: a reader never sees half a file."""
    missing = [column for column in SCORE_COLUMNS if column not in scores.columns]
    if missing:
        raise ValueError(f"scores lack columns {missing}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            scores[list(SCORE_COLUMNS)].to_csv(stream, index=False, float_format="%.6f")
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out
