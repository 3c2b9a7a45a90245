"""Wiring: the weekly job as a chain of stage functions, shared by the CLI and the HTTP API.

Data flows one way: extract -> store -> features -> scores + reasons -> proposal -> decisions.
Each function here only connects stages and decides where files go; the logic lives in the packages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from api import service_db
from api.settings import Settings
from features.store import Store

# The stages (models, allocation, experiments with MLflow, the published week) are imported inside
# the functions that run them: the CLI imports this module for every verb, and importing them all
# at the top takes `rebalance --help` from 2.6-2.8 s to 8.4-9.4 s of CPU (api/cli/__init__.py).


def open_store(settings: Settings) -> Store:
    return Store(settings.home)


def latest_as_of(settings: Settings) -> pd.Timestamp:
    """The default as-of date: the last day any partner record was known in the current snapshot."""
    events = open_store(settings).read_table("events", columns=["known_at"])
    return pd.Timestamp(events["known_at"].max()).normalize()


def resolve_as_of(settings: Settings, as_of) -> pd.Timestamp:
    return latest_as_of(settings) if as_of is None else pd.Timestamp(as_of).normalize()


def train_settings(settings: Settings):
    from models import settings_from_mapping

    return settings_from_mapping(
        {
            **settings.training,
            "horizon_weeks": settings.horizon_weeks,
            "crisis_types": list(settings.crisis_types),
        }
    )


def fairness_settings(settings: Settings):
    """The council's fairness policy: `[fairness]` of rebalance.toml over the product's defaults.

    [fairness]
    metrics = ["false_negative_rate", "recall_at_k", "predicted_to_observed"]
    min_ratio = 0.8
    max_ratio = 1.25
    min_households = 100
    min_positives = 10
    confidence = 0.95        # "none": judge the bare ratios
    correction = "holm"      # or "none"
    attributes = ["sex", "ethnicity", "disability", "age_band", "locality"]

    `accepted` (findings the council accepts at promotion) is not policy: see
    `accepted_findings`.
    """
    from experiments.fairness import fairness_gate_from_mapping

    policy = {key: value for key, value in settings.fairness.items() if key != "accepted"}
    try:
        return fairness_gate_from_mapping(policy)
    except ValueError as error:
        raise ValueError(f"{settings.home / 'rebalance.toml'}: [fairness] {error}") from None


# A finding accepted on the command line comes up for review after a quarter unless dated.
DEFAULT_REVIEW_DAYS = 91


def accepted_findings(
    settings: Settings,
    *,
    accept: tuple[str, ...] | list[str] = (),
    reason: str | None = None,
    review_by=None,
) -> tuple:
    """The fairness findings the council accepts at this promotion.

    From rebalance.toml (each with its own reason and a required review date):

    [fairness]
    accepted = [{finding = "age_band=65+:recall_at_k", reason = "...", review_by = 2027-03-31}]

    and from the command (`accept`: ATTRIBUTE=GROUP:METRIC texts sharing one `reason`, required,
    and `review_by`, default DEFAULT_REVIEW_DAYS from today). A finding given both ways counts
    once, as given on the command.
    """
    from experiments.fairness import accepted_finding, accepted_findings_from_config

    try:
        configured = accepted_findings_from_config(settings.fairness.get("accepted", []))
    except ValueError as error:
        raise ValueError(f"{settings.home / 'rebalance.toml'}: [fairness] {error}") from None
    if not accept:
        if reason is not None or review_by is not None:
            raise ValueError("--reason and --review-by go with --accept FINDING")
        return configured
    if reason is None or not reason.strip():
        raise ValueError(
            "--accept needs --reason: say why the council accepts the finding (it is recorded "
            "with your name in the promotion audit, the model card and the transparency record)"
        )
    review_by = review_by or datetime.now(UTC).date() + timedelta(days=DEFAULT_REVIEW_DAYS)
    given = tuple(
        accepted_finding(text, reason=reason, review_by=review_by, source="command line")
        for text in dict.fromkeys(accept)
    )
    named = {item.finding for item in given}
    return given + tuple(item for item in configured if item.finding not in named)


def allocation_settings(settings: Settings):
    from allocation import AllocationSettings

    return AllocationSettings(**settings.allocation, safeguarding=settings.needs.safeguarding)


def read_truth(settings: Settings) -> pd.DataFrame | None:
    """The synthetic city's truth file, when the extract came from the simulator."""
    truth_path = settings.extract_dir / "truth.csv"
    if not truth_path.exists():
        return None
    return pd.read_csv(truth_path, parse_dates=["as_of"], dtype={"household_id": "str"})


def current_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    """The current snapshot, with the cases managers opened through the service counted as open."""
    tables = open_store(settings).read_tables()
    cases = service_db.cases_with_decisions(
        tables["cases"], service_db.stored_decided_cases(settings), workers=tables["workers"]
    )
    return tables | {"cases": cases}


def train_model(settings: Settings, *, as_of, promote: bool = False):
    """Train a challenger on the current snapshot; optionally promote it in the same go."""
    from experiments.promotion import promote as promote_challenger
    from experiments.registry import train

    store = open_store(settings)
    training = train_settings(settings)
    fairness = fairness_settings(settings)
    result = train(
        tables=store.read_tables(),
        snapshot_id=store.current_snapshot_id(),
        as_of=resolve_as_of(settings, as_of),
        settings=training,
        home=settings.home,
        tracking_uri=settings.tracking_uri,
        truth=read_truth(settings),
        fairness=fairness,
    )
    decision = (
        promote_challenger(
            home=settings.home,
            settings=training,
            tracking_uri=settings.tracking_uri,
            fairness=fairness,
        )
        if promote
        else None
    )
    return result, decision


def promote_model(
    settings: Settings,
    *,
    accept: tuple[str, ...] | list[str] = (),
    reason: str | None = None,
    review_by=None,
):
    """Promote the challenger under the council's policy and accepted findings (toml, `accept`)."""
    from experiments.promotion import promote

    return promote(
        home=settings.home,
        settings=train_settings(settings),
        tracking_uri=settings.tracking_uri,
        fairness=fairness_settings(settings),
        accepted=accepted_findings(settings, accept=accept, reason=reason, review_by=review_by),
    )


def champion(settings: Settings):
    from experiments.registry import load_champion

    return load_champion(home=settings.home, tracking_uri=settings.tracking_uri)


def _scores_key(settings: Settings, *, model_version: str) -> dict:
    return {
        "snapshot_id": open_store(settings).current_snapshot_id(),
        "model_version": str(model_version),
        "horizon_weeks": settings.horizon_weeks,
        # Needs are read from the records by the council's [needs] settings: a change re-scores.
        "needs": settings.needs.as_dict(),
    }


def score_week(settings: Settings, *, as_of=None) -> pd.DataFrame:
    """Scores as of a date from the champion, cached per (snapshot, model version) in the week."""
    from models import read_scores, score_households, write_scores

    as_of = resolve_as_of(settings, as_of)
    model = champion(settings)
    week_dir = settings.week_dir(as_of)
    key = _scores_key(settings, model_version=model.version)
    key_path, scores_path = week_dir / "scores.json", week_dir / "scores.csv"
    if scores_path.exists() and key_path.exists() and json.loads(key_path.read_text()) == key:
        return read_scores(scores_path)
    scores = score_households(
        tables=current_tables(settings), as_of=as_of, model=model, needs_settings=settings.needs
    )
    week_dir.mkdir(parents=True, exist_ok=True)
    write_scores(scores, scores_path)
    write_json(key_path, key)
    return read_scores(scores_path)


def publish_week(settings: Settings, *, as_of=None, processes: int = 2) -> tuple[Path, int]:
    """Every scored household's record for the service (api.published), made from this week's
    scores and the current snapshot; returns the file and how many were made (0 when it was
    already published from the same files). Earlier weeks' records are removed: the service
    serves the latest week only, and each week's are hundreds of megabytes."""
    from api.published import publish_records
    from api.records_db import RECORDS_FILE
    from api.week import load_week, week_dirs

    week_dir = settings.week_dir(resolve_as_of(settings, as_of))
    week = load_week(settings, week_dir=week_dir)
    path = week_dir / RECORDS_FILE
    made = 0
    if week.published is None:
        made = publish_records(week, path=path, key=week.records_key, processes=processes)
    for earlier in week_dirs(settings):
        if earlier.name < week_dir.name:
            (earlier / RECORDS_FILE).unlink(missing_ok=True)
    return path, made


def allocate_week(
    settings: Settings,
    *,
    as_of=None,
    locks: pd.DataFrame | None = None,
    locality=None,
    what_if: dict | None = None,
):
    """The weekly allocation proposal from this week's scores.

    `what_if` (add, remove, capacity) changes the workers for this run only, as a manager's
    question; the store is never changed.
    """
    from allocation import propose_allocation
    from allocation import what_if as workers_what_if

    as_of = resolve_as_of(settings, as_of)
    tables = current_tables(settings)
    workers = workers_what_if(tables["workers"], **what_if) if what_if else tables["workers"]
    return propose_allocation(
        scores=score_week(settings, as_of=as_of),
        workers=workers,
        cases=tables["cases"],
        locks=locks,
        locality=locality,
        settings=allocation_settings(settings),
        as_of=as_of,
    )


def explain_week(settings: Settings, *, household_id: str, as_of=None) -> dict:
    """One household's explanation: risk, reasons, needs, what changed since last week, timeline."""
    from features.build import features_as_of, prepare_tables
    from models.explain import explain_household

    as_of = resolve_as_of(settings, as_of)
    model = champion(settings)
    tables = current_tables(settings)
    prepared = prepare_tables(tables)
    return explain_household(
        booster=model.estimator.booster_,
        household_id=household_id,
        features=features_as_of(prepared, as_of=as_of),
        previous_features=features_as_of(prepared, as_of=as_of - pd.Timedelta(days=7)),
        records=tables,
        as_of=as_of,
        calibrator=model.estimator.calibrator_.predict,
        horizon_weeks=settings.horizon_weeks,
        needs_settings=settings.needs,
    )


def write_summary(*, path: Path, scores: pd.DataFrame, proposal, as_of: pd.Timestamp) -> Path:
    """A short Markdown summary of the week for a locality manager."""
    summary = proposal.summary
    lines = [
        f"# Weekly proposal as of {as_of.date()}",
        "",
        f"- Households scored: {len(scores):,}",
        f"- Candidates considered: {summary['candidates']:,}",
        f"- Proposed for a key worker: {summary['assigned']:,}",
        f"- Waitlisted: {summary['waitlisted']:,}",
        f"- Solver: {summary['status']}, gap {summary['gap']:.4%}, "
        f"{summary['solve_seconds']:.1f} s",
        "",
        "This is advice: a locality manager reviews and decides every row.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def simulate_programme(
    settings: Settings, *, simulation, model_choice: str = "auto", progress=None
):
    """Run the policy simulation, write it under <home>/programme/ and log it to MLflow.

    model_choice: "champion" scores with the home's champion, "train" trains one on the first
    seed's history (cached under <home>/simulation-models/), "auto" uses the champion if any.
    Returns (result, paths written, MLflow run ids).
    """
    from experiments import tracking
    from experiments.simulation import simulate, tracking_runs, write_simulation

    model, info = None, None
    if model_choice in ("auto", "champion"):
        try:
            chosen = champion(settings)
            model = chosen.estimator
            info = {"source": "champion", "version": chosen.version, "run_id": chosen.run_id}
        except LookupError:
            if model_choice == "champion":
                raise
    result = simulate(
        simulation,
        model=model,
        model_info=info,
        cache_dir=settings.home / "simulation-models",
        progress=progress,
    )
    out = settings.home / "programme"
    paths = write_simulation(result, out)
    run_ids = tracking.log_simulation_runs(
        tracking_uri=settings.tracking_uri, runs=tracking_runs(result), artifacts_dir=out
    )
    return result, paths, run_ids
