"""Why a household is on the list: exact TreeSHAP reasons in plain English, needs, what changed.

Attributions are exact path-dependent TreeSHAP values of the LightGBM booster in log-odds: per
household they add up, with the base value, to the booster's raw score. The calibrator maps that
raw score to the probability shown. Reasons, `needs`, "what changed" and the timeline are written
from the reviewed templates in `reason_templates.toml` (see docs/reasons.md).

The pieces: attributions (models._attributions, with the pattern engine in models._forest and
models._patterns), reasons (models._reasons and the template modules), the timeline
(models._timeline), terminal text (models._terminal_text) and the effect checks (models._effects).
This module is the entry point: the names others import are all here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

import models._reasons as _reasons
import models._timeline as _timeline
from features.labels import DEFAULT_HORIZON_WEEKS
from features.needs import NeedsSettings, needs_of_records
from models._attributions import (
    BASE_VALUE,
    attribution_matrix,
    feature_names_of,
    group_attributions,
    has_categories,
    model_input,
    shap_attributions,
)
from models._effects import EXPECTED_EFFECTS, ExpectedEffect, effect_direction_checks
from models._phrases import TEXT
from models._reason_groups import GROUPS, NO_GROUP, text_columns
from models._reason_texts import household_agency_names, recent_agency_names
from models._templates import TEMPLATES_PATH as REASON_TEMPLATES_PATH
from models._templates import load_templates
from models._terminal_text import format_explanation
from models._timeline import TIMELINE_FIELDS, HouseholdRecords, Timelines, index_records

__all__ = [
    "BASE_VALUE",
    "EXPECTED_EFFECTS",
    "ExpectedEffect",
    "TIMELINE_FIELDS",
    "HouseholdRecords",
    "REASON_SEPARATOR",
    "REASON_TEMPLATES_PATH",
    "RISK_BANDS",
    "Timelines",
    "attribution_matrix",
    "effect_direction_checks",
    "explain_household",
    "explain_households",
    "feature_names_of",
    "format_explanation",
    "group_attributions",
    "household_timeline",
    "household_timelines",
    "index_records",
    "load_templates",
    "model_input",
    "risk_band",
    "risk_bands",
    "shap_attributions",
    "shared_since",
    "split_reasons",
]


def _calibrated(raw_score: np.ndarray, calibrator) -> np.ndarray:
    if calibrator is None:
        return 1.0 / (1.0 + np.exp(-raw_score))
    predict = calibrator if callable(calibrator) else calibrator.predict
    return np.asarray(predict(raw_score), dtype=np.float64)


def _text_column_names(features: pd.DataFrame) -> list[str]:
    needed = [name for group in GROUPS for name in text_columns(group)]
    missing = [name for name in needed if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack columns the reason texts show: {missing[:10]}")
    return needed


def _row_reasons(
    *,
    values: Mapping[str, np.ndarray],
    attributions: np.ndarray,
    feature_names: list[str],
    max_reasons: int,
) -> _reasons.RowReasons:
    return _reasons.reasons_for_rows(
        values=values,
        attributions=attributions,
        feature_names=feature_names,
        max_reasons=max_reasons,
        templates=load_templates(),
    )


def explain_households(
    *,
    booster,
    features: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    calibrator: Callable[[np.ndarray], np.ndarray] | None = None,
    max_reasons: int | None = None,
) -> pd.DataFrame:
    """Reasons, needs and risk of every household (one row each, in the order of `features`).

    Columns: household_id, raw_score (log-odds), risk (calibrated; logistic when no calibrator),
    band, reasons (texts joined by " | ", or the "no single strong factor" line), needs (the
    skills of the shown reasons, ";"-separated, contract order: the weekly scores' needs come from
    the records instead, features.needs), reason_groups (";"-separated indicator keys),
    strong_reasons (how many shown) and share_1..share_<max_reasons> (each reason's share of the
    upward push).
    """
    templates = load_templates()
    max_reasons = templates.max_reasons if max_reasons is None else max_reasons
    feature_names = feature_names_of(booster)
    attributions = attribution_matrix(
        booster, model_input(features, feature_names, booster=booster)
    )
    agency_names = recent_agency_names(
        tables["events"], household_ids=pd.Index(features.index), as_of=as_of, templates=templates
    )
    values = {name: features[name].to_numpy(np.float64) for name in _text_column_names(features)}
    reasons = _row_reasons(
        values=values | {"agency_names": agency_names},
        attributions=attributions[:, :-1],
        feature_names=feature_names,
        max_reasons=max_reasons,
    )
    raw_score = attributions.sum(axis=1)
    risk = _calibrated(raw_score, calibrator)
    return pd.DataFrame(
        {
            "household_id": pd.array(features.index.astype(str), dtype="str"),
            "raw_score": raw_score,
            "risk": risk,
            "band": pd.array(_reasons.risk_bands(risk, templates=templates), dtype="str"),
            "reasons": pd.array(
                _reasons.joined_text(reasons, templates=templates).astype(object), dtype="str"
            ),
            "needs": pd.array(_reasons.needs_text(reasons), dtype="str"),
            "reason_groups": pd.array(
                _reasons.group_keys_text(reasons).astype(object), dtype="str"
            ),
            "strong_reasons": reasons.count.astype(np.int64),
        }
        | {f"share_{rank + 1}": reasons.share[:, rank] for rank in range(max_reasons)}
    )


def _reason_list(reasons: _reasons.RowReasons, row: int) -> list[dict[str, object]]:
    return [
        {
            "group": GROUPS[group].key,
            "text": str(reasons.text[row, rank]),
            "share": float(reasons.share[row, rank]),
            "contribution": float(reasons.contribution[row, rank]),
            "skills": _reasons.skills_of_mask(int(reasons.skills[row, rank])),
        }
        for rank, group in enumerate(reasons.group[row])
        if group != NO_GROUP
    ]


def _has_row(frame: pd.DataFrame | None, household_id: str) -> bool:
    return frame is not None and household_id in frame.index


def _household_rows(
    frames: list[pd.DataFrame | None], household_id: str, *, names: list[str]
) -> list[np.ndarray | None]:
    """The household's row of each frame as float64 values of `names` (None where absent)."""
    rows = []
    for frame in frames:
        if not _has_row(frame, household_id):
            rows.append(None)
            continue
        positions = frame.columns.get_indexer(names)
        if (positions < 0).any():
            missing = [name for name, at in zip(names, positions, strict=True) if at < 0]
            raise ValueError(f"the features lack columns: {missing[:10]}")
        row = frame.iloc[frame.index.get_loc(household_id)].to_numpy(np.float64)
        rows.append(row[positions])
    return rows


def _household_input(
    booster, frames: list[pd.DataFrame | None], household_id: str, *, names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The household's model input (rows x the booster's features, float32) and its values of
    `names` for the texts (float64), from each frame that has it (this week, then last week)."""
    rows = np.vstack(
        [row for row in _household_rows(frames, household_id, names=names) if row is not None]
    )
    feature_names = feature_names_of(booster)
    if not has_categories(frames[0], booster):
        return rows[:, : len(feature_names)].astype(np.float32), rows
    # Category columns go in as the codes the booster was trained with.
    present = [frame.loc[[household_id]] for frame in frames if _has_row(frame, household_id)]
    return np.vstack([model_input(one, feature_names, booster=booster) for one in present]), rows


def _explanations(
    *,
    booster,
    feature_names: list[str],
    matrix: np.ndarray,
    rows: np.ndarray,
    value_names: list[str],
    agency_names: np.ndarray,
    calibrator,
    max_reasons: int,
) -> list[dict[str, object]]:
    """Risk, band and reasons of a few rows of one household (e.g. this week and last):
    `matrix` is their model input, `rows` their values of `value_names` for the texts."""
    templates = load_templates()
    values = dict(zip(value_names, rows.T, strict=True))
    attributions = attribution_matrix(booster, np.ascontiguousarray(matrix))
    reasons = _row_reasons(
        values=values | {"agency_names": agency_names},
        attributions=attributions[:, :-1],
        feature_names=feature_names,
        max_reasons=max_reasons,
    )
    raw_score = attributions.sum(axis=1)
    risk = _calibrated(raw_score, calibrator)
    bands = _reasons.risk_bands(risk, templates=templates)
    explanations = []
    for row in range(len(rows)):
        reason_list = _reason_list(reasons, row)
        explanations.append(
            {
                "risk": float(risk[row]),
                "band": str(bands[row]),
                "raw_score": float(raw_score[row]),
                "base_value": float(attributions[row, -1]),
                "reasons": reason_list,
                "no_strong_reason": None if reason_list else templates.no_strong_reason,
            }
        )
    return explanations


def explain_household(
    *,
    booster,
    household_id: str,
    features: pd.DataFrame,
    records: HouseholdRecords | Mapping[str, pd.DataFrame],
    as_of,
    previous_features: pd.DataFrame | None = None,
    calibrator: Callable[[np.ndarray], np.ndarray] | None = None,
    max_reasons: int | None = None,
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS,
    needs_settings: NeedsSettings | None = None,
) -> dict[str, object]:
    """One household's explanation as a JSON-ready dict.

    `features` are as of `as_of` and `previous_features` as of 7 days earlier (both indexed by
    household_id; other households may be present). `records` is `index_records(tables)` (fast,
    for a service) or the tables themselves. Keys: household_id, as_of, horizon_weeks, risk,
    band, raw_score, base_value, reasons [{group, text, share, contribution, skills}],
    no_strong_reason (the line shown when there are no reasons, else None), needs (from the
    household's records under `needs_settings`, as in the weekly scores), needs_evidence
    [{need, evidence}] in needs order, what_changed {...} and timeline [...].
    """
    templates = load_templates()
    max_reasons = templates.max_reasons if max_reasons is None else max_reasons
    as_of = pd.Timestamp(as_of).normalize()
    previous_as_of = as_of - pd.Timedelta(days=7)
    feature_names = feature_names_of(booster)
    names = list(dict.fromkeys([*feature_names, *_text_column_names(features)]))
    if not _has_row(features, household_id):
        raise ValueError(f"household {household_id!r} has no features as of {as_of.date()}")
    frames = [features, previous_features]
    matrix, rows = _household_input(booster, frames, household_id, names=names)
    household = _timeline.household_tables(records, household_id)
    dates = [as_of, previous_as_of][: len(rows)]
    agency_names = np.array(
        [
            household_agency_names(household["events"], as_of=on, templates=templates)
            for on in dates
        ],
        dtype=TEXT,
    )
    now, *then = _explanations(
        booster=booster,
        feature_names=feature_names,
        matrix=matrix,
        rows=rows,
        value_names=names,
        agency_names=agency_names,
        calibrator=calibrator,
        max_reasons=max_reasons,
    )
    story = _timeline.timeline(household, as_of=as_of, templates=templates)
    new_records = _timeline.shared_since(story, since=previous_as_of)
    changed = _timeline.what_changed(
        now=now, then=(then or [None])[0], previous_as_of=previous_as_of, new_records=new_records
    )
    return {
        "household_id": str(household_id),
        "as_of": as_of.date().isoformat(),
        "horizon_weeks": int(horizon_weeks),
        **now,
        **_household_needs(household["events"], as_of=as_of, settings=needs_settings),
        "what_changed": changed,
        "timeline": story,
    }


def _household_needs(
    events: Mapping[str, np.ndarray], *, as_of, settings: NeedsSettings | None
) -> dict[str, object]:
    """The household's needs from its own records, each with its evidence (features.needs)."""
    pairs = needs_of_records(
        event_type=events["event_type"],
        occurred_at=events["occurred_at"],
        known_at=events["known_at"],
        value=events["value"],
        as_of=as_of,
        settings=settings,
    )
    return {
        "needs": ";".join(need for need, _ in pairs),
        "needs_evidence": [{"need": need, "evidence": text} for need, text in pairs],
    }


def household_timeline(
    *, records: HouseholdRecords | Mapping[str, pd.DataFrame], household_id: str, as_of
) -> list[dict[str, object]]:
    """The household's records across agencies shared by `as_of`, most recent first."""
    household = _timeline.household_tables(records, household_id)
    return _timeline.timeline(household, as_of=as_of, templates=load_templates())


def household_timelines(*, records: HouseholdRecords, as_of, household_ids=None) -> Timelines:
    """`household_timeline` for many households at once, as columns (default: every household
    with a record): what a weekly run's pages are made from."""
    return _timeline.timelines(
        records, as_of=as_of, templates=load_templates(), household_ids=household_ids
    )


def shared_since(entries: list[dict[str, object]], *, since) -> list[dict[str, object]]:
    """The timeline entries shared after `since` (a week's new records)."""
    return _timeline.shared_since(entries, since=since)


def risk_bands(risk: np.ndarray) -> np.ndarray:
    """The reviewed band label ("low" ... "very high") of each calibrated probability."""
    return _reasons.risk_bands(np.asarray(risk, dtype=np.float64), templates=load_templates())


# The bands and the separator of shown reasons are the reviewed templates' (reason_templates.toml);
# every page, record and export reads them from here.
RISK_BANDS: tuple[tuple[float, str], ...] = tuple(
    zip(load_templates().band_lowers, load_templates().band_labels, strict=True)
)
REASON_SEPARATOR: str = load_templates().separator


@functools.lru_cache(maxsize=65_536)
def risk_band(risk: float) -> str:
    """The reviewed band of one calibrated probability (pages ask for the same few risks often)."""
    return str(risk_bands(np.array([float(risk)]))[0])


def split_reasons(text: object) -> list[str]:
    """The shown reasons of a scores row, one text each (empty for no text)."""
    if not isinstance(text, str):
        return []
    return [part.strip() for part in text.split(REASON_SEPARATOR) if part.strip()]
