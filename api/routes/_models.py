"""What the model pages show: champion and challenger with metrics, plots, model card and
fairness audit, and the week's pseudonymised features.

Model facts come from the MLflow registry (through experiments.tracking, the one module that
talks to MLflow). A run's artifacts are copied once into `<home>/service-cache/runs/<run id>/`;
the registry itself is asked again at most every 30 seconds. Features are built once per week.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path as FilePath

import pandas as pd
from markdown_it import MarkdownIt

from api.deps import ServiceState
from api.pipeline import fairness_settings
from api.settings import Settings
from experiments import tracking
from experiments.fairness import METRIC_LABELS, fairness_gate, gated_rows
from experiments.promotion import governance_dir
from features.build import features_as_of, prepare_tables
from features.store import Store
from models import MODEL_NAME

_REFRESH_SECONDS = 30.0
_registry_lock = threading.Lock()
_features_lock = threading.Lock()


# --- reading the registry -----------------------------------------------------------------------


def _run_directory(settings: Settings, run_id: str) -> FilePath:
    """The run's artifacts, copied from the tracking store on first use."""

    target = settings.home / "service-cache" / "runs" / run_id
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".incoming-") as scratch:
        copied = tracking.download_run_artifacts(
            tracking_uri=settings.tracking_uri, run_id=run_id, path="", dst=FilePath(scratch)
        )
        shutil.move(str(copied), target)
    return target


def _csv_records(path: FilePath) -> list[dict]:
    frame = pd.read_csv(path)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _version_facts(settings: Settings, *, alias: str, found) -> dict:

    metrics, _, _ = tracking.run_values(tracking_uri=settings.tracking_uri, run_id=found.run_id)
    directory = _run_directory(settings, found.run_id)
    metrics_csv = directory / "metrics.csv"
    holdout = []
    if metrics_csv.is_file():
        holdout = [row for row in _csv_records(metrics_csv) if row.get("fold") == "holdout"]
    fairness_files = sorted(
        path for path in directory.rglob("*") if path.is_file() and "fairness" in path.name
    )
    accepted = accepted_findings(settings, version=found.version)
    fairness, verdict = fairness_rows(settings, directory / "fairness_audit.csv", accepted=accepted)
    return {
        "alias": alias,
        "version": found.version,
        "run_id": found.run_id,
        "metrics": {key: float(value) for key, value in sorted(metrics.items())},
        "holdout": holdout,
        "fairness": fairness,
        "fairness_gate": verdict,
        "accepted_findings": accepted,
        "fairness_files": [str(path.relative_to(directory)) for path in fairness_files],
        "plots": sorted(str(path.relative_to(directory)) for path in directory.rglob("*.png")),
        "has_model_card": (directory / "model_card.md").is_file(),
        "directory": directory,
    }


FAIRNESS_COLUMNS: tuple[str, ...] = (
    "attribute",
    "group",
    "households",
    "positives",
    "base_rate",
    "selected",
    "false_negative_rate",
    "recall_at_k",
    "recall_at_k_ratio",
    "false_negative_rate_ratio",
    "predicted_to_observed_ratio",
)


# Written beside a champion's transparency record at promotion (models.promote).
ACCEPTED_FINDINGS_FILE = "accepted_findings.json"


def accepted_findings(settings: Settings, *, version: str) -> list[dict]:
    """The fairness findings the council accepted when this version was promoted ([] if none)."""

    path = governance_dir(settings.home, version=version) / ACCEPTED_FINDINGS_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def fairness_rows(
    settings: Settings, path: FilePath, *, accepted: list[dict] | tuple = ()
) -> tuple[list[dict], dict | None]:
    """The run's audit table with each row's verdict under the council's current policy.

    verdict: "reference", "not gated (small)", "passes" or "fails: <metric>, ..."; a failure
    the council accepted at promotion reads "<metric> (accepted at promotion)". The gate's
    overall verdict and message come with it. No table: ([], None).
    """

    if not path.is_file():
        return [], None
    audit = pd.read_csv(path, dtype={"group": "str", "attribute": "str"})
    policy = fairness_settings(settings)
    gate = fairness_gate(audit, settings=policy)
    accepted_keys = {(item["attribute"], item["group"], item["metric"]) for item in accepted}
    failing: dict[tuple[str, str], list[str]] = {}
    for failure in gate.failures:
        key = (failure["attribute"], failure["group"])
        label = METRIC_LABELS.get(failure["metric"], "too small")
        if (*key, failure["metric"]) in accepted_keys:
            label += " (accepted at promotion)"
        failing.setdefault(key, []).append(label)
    large = gated_rows(audit, settings=policy)
    verdicts = [
        "reference"
        if row["is_reference"] and (row["attribute"], row["group"]) not in failing
        else f"fails: {', '.join(failing[(row['attribute'], row['group'])])}"
        if (row["attribute"], row["group"]) in failing
        else ("passes" if large.loc[index] else "not gated (small)")
        for index, row in audit.iterrows()
    ]
    table = audit[list(FAIRNESS_COLUMNS)].assign(verdict=verdicts)
    records = table.astype(object).where(table.notna(), None).to_dict("records")
    return records, {"passed": gate.passed, "message": gate.message, "k": int(audit["k"].iloc[0])}


def transparency_record_html(settings: Settings, *, version: str) -> str:
    """The champion's ATRS record written at promotion (empty when there is none)."""

    path = governance_dir(settings.home, version=version) / "transparency_record.md"
    return _markdown().render(path.read_text(encoding="utf-8")) if path.is_file() else ""


def registry_facts(state: ServiceState) -> dict:
    """Champion and challenger with their metrics and artifacts (cached for 30 seconds)."""

    with _registry_lock:
        cached = state.models_cache.get("registry")
        if cached and time.monotonic() - cached[0] < _REFRESH_SECONDS:
            return cached[1]
        settings = state.settings
        facts = {"model_name": MODEL_NAME}
        for alias in (tracking.CHAMPION, tracking.CHALLENGER):
            found = tracking.version_by_alias(
                tracking_uri=settings.tracking_uri, model_name=MODEL_NAME, alias=alias
            )
            facts[alias] = (
                None if found is None else _version_facts(settings, alias=alias, found=found)
            )
        state.models_cache["registry"] = (time.monotonic(), facts)
        return facts


def public_facts(facts: dict, *, week_model: str | None) -> dict:
    def strip(version: dict | None) -> dict | None:
        return None if version is None else {k: v for k, v in version.items() if k != "directory"}

    return {
        "model_name": facts["model_name"],
        "champion": strip(facts["champion"]),
        "challenger": strip(facts["challenger"]),
        "scores_model_version": week_model,
    }


def week_model(state: ServiceState) -> str | None:
    try:
        versions = state.weeks.current().scores["model_version"].dropna().unique()
    except Exception:  # no weekly run yet: the model pages still work
        return None
    return str(versions[0]) if len(versions) else None


@functools.cache
def _markdown():

    # Raw HTML in a card is shown as text, never run.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def model_card_html(directory: FilePath) -> str:
    card = directory / "model_card.md"
    return _markdown().render(card.read_text(encoding="utf-8")) if card.is_file() else ""


# --- features ------------------------------------------------------------------------------------


def week_features(state: ServiceState, week) -> pd.DataFrame:
    """The week's model features per household (pseudonymised ids; no protected columns)."""

    with _features_lock:
        cached = state.models_cache.get("features")
        if cached and cached[0] == (week.week_dir, week.snapshot_id):
            return cached[1]
        tables = Store(state.settings.home).read_tables(snapshot_id=week.snapshot_id or None)
        features = features_as_of(prepare_tables(tables), as_of=week.as_of).sort_index()
        state.models_cache["features"] = ((week.week_dir, week.snapshot_id), features)
        return features
