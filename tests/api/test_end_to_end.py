"""The weekly job end to end through the CLI on a small synthetic city: `rebalance demo --no-serve`,
then the individual verbs, checking the properties a manager and an auditor rely on."""

from __future__ import annotations

import concurrent.futures
import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.settings import load_settings
from api.week import load_week
from features.store import Store
from tests.conftest import new_home

HOUSEHOLDS = 4000
TRAINING = """
[training]
folds = 3
history_dates = 4
num_threads = 1
"""


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory, _mlflow_template_db):
    home = new_home(tmp_path_factory.mktemp("demo") / "home", mlflow_schema=_mlflow_template_db)
    (home / "rebalance.toml").write_text(TRAINING)
    result = CliRunner().invoke(
        app,
        ["demo", "--households", str(HOUSEHOLDS), "--seed", "5", "--no-serve", "--home", str(home)],
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert result.exit_code == 0, result.output
    return home


def run(home, *arguments: str):
    result = CliRunner().invoke(app, [*arguments, "--home", str(home)])
    assert result.exit_code == 0, result.output
    return result


def week_dir(home):
    weeks = sorted((home / "weeks").iterdir())
    assert len(weeks) == 2, "the demo scores this week and the week before (for what changed)"
    return weeks[-1]


def test_demo_scores_every_household_once_with_a_probability(demo_home):
    scores = pd.read_csv(week_dir(demo_home) / "scores.csv", dtype={"household_id": "str"})
    households = Store(demo_home).read_table("households")
    assert sorted(scores["household_id"]) == sorted(households["household_id"])
    assert scores["risk"].between(0, 1).all()
    assert sorted(scores["rank"]) == list(range(1, len(households) + 1))
    # Rank follows risk: a higher-ranked household never has a lower calibrated risk.
    assert scores.sort_values("rank")["risk"].is_monotonic_decreasing


def test_demo_proposal_never_exceeds_capacity_and_keeps_the_rules(demo_home):
    store = Store(demo_home)
    workers = store.read_table("workers").set_index("worker_id")
    cases = store.read_table("cases")
    open_cases = cases.loc[cases["closed_at"].isna()]
    proposal = pd.read_csv(week_dir(demo_home) / "proposal.csv", dtype=str, keep_default_na=False)
    assigned = proposal.loc[proposal["status"] == "assigned"].astype({"points": int})
    assert len(assigned) > 0
    load = (
        open_cases.groupby("worker_id")["complexity_points"]
        .sum()
        .add(assigned.groupby("worker_id")["points"].sum(), fill_value=0)
    )
    assert (load <= workers["capacity_points"].reindex(load.index)).all()
    assert workers.loc[assigned["worker_id"], "active"].all()
    worker_locality = workers.loc[assigned["worker_id"], "locality"].to_numpy()
    assert (worker_locality == assigned["locality"].to_numpy()).all()
    assert not set(proposal["household_id"]) & set(open_cases["household_id"])
    abuse = assigned.loc[assigned["needs"].str.contains("domestic_abuse")]
    skills = workers.loc[abuse["worker_id"], "skills"]
    assert skills.str.split(";").map(lambda worker: "domestic_abuse" in worker).all()


def test_the_weekly_verbs_reproduce_the_demo_byte_for_byte(demo_home, tmp_path):
    week = week_dir(demo_home)
    run(demo_home, "score", "--as-of", week.name, "--out", str(tmp_path / "scores.csv"))
    run(demo_home, "allocate", "--as-of", week.name, "--out", str(tmp_path / "proposal.csv"))
    assert (tmp_path / "scores.csv").read_bytes() == (week / "scores.csv").read_bytes()
    assert (tmp_path / "proposal.csv").read_bytes() == (week / "proposal.csv").read_bytes()


def test_a_bad_extract_is_refused_and_the_store_is_unchanged(demo_home, tmp_path):
    store = Store(demo_home)
    current = store.current_snapshot_id()
    bad = tmp_path / "bad"
    bad.mkdir()
    for table in ("households", "people", "workers", "cases"):
        (bad / f"{table}.csv").write_bytes((demo_home / "extract" / f"{table}.csv").read_bytes())
    events = pd.read_csv(demo_home / "extract" / "events.csv", dtype=str, keep_default_na=False)
    events.loc[1, "source"] = "polis"
    events.to_csv(bad / "events.csv", index=False)
    result = CliRunner().invoke(app, ["ingest", str(bad), "--home", str(demo_home)])
    assert result.exit_code == 1
    assert "events.csv line 3 (row 2), column source" in result.output
    assert store.current_snapshot_id() == current


def _in_new_thread(work):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def _timeline_of(week, household_id: str) -> list[dict]:
    return json.loads(week.published.get(household_id).json([]))["timeline"]


def test_a_new_snapshot_is_published_again_and_a_withdrawn_record_is_gone(demo_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    settings, week = load_settings(home=home), week_dir(home)
    before = load_week(settings, week_dir=week)
    assert before.published is not None, "the demo publishes the week's household records"
    events = pd.read_csv(home / "extract" / "events.csv", dtype=str, keep_default_na=False)
    withdrawn = events.loc[events["known_at"] <= week.name].iloc[-1]
    corrected = tmp_path / "corrected"
    corrected.mkdir()
    for table in ("households", "people", "workers", "cases"):
        shutil.copy(home / "extract" / f"{table}.csv", corrected / f"{table}.csv")
    events.drop(index=withdrawn.name).to_csv(corrected / "events.csv", index=False)
    household = withdrawn["household_id"]
    shown_before = _timeline_of(before, household)

    output = run(home, "ingest", str(corrected)).output
    assert "household records" in output
    after = load_week(settings, week_dir=week)
    assert after.snapshot_id != before.snapshot_id and after.published is not None
    assert len(_timeline_of(after, household)) == len(shown_before) - 1
    # The week loaded before still reads the snapshot it was loaded with, or nothing: another
    # thread opening the file now finds it published for another snapshot.
    assert _in_new_thread(lambda: before.published.get(household)) is None


def test_unknown_household_is_a_clear_error_not_a_traceback(demo_home):
    result = CliRunner().invoke(app, ["explain", "NO-SUCH-HOUSEHOLD", "--home", str(demo_home)])
    assert result.exit_code == 2
    assert "NO-SUCH-HOUSEHOLD" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_refused_model_stops_the_demo_with_the_gate_and_scores_nothing(
    tmp_path, _mlflow_template_db
):
    home = new_home(tmp_path / "home", mlflow_schema=_mlflow_template_db)
    # A bar no model on this city reaches: the minimum-AUC gate refuses the challenger.
    (home / "rebalance.toml").write_text(TRAINING + "min_auc = 0.99\n")
    result = CliRunner().invoke(
        app,
        ["demo", "--households", "1500", "--seed", "5", "--no-serve", "--home", str(home)],
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert result.exit_code == 2, result.output
    assert "minimum_auc" in result.output and "Nothing was scored" in result.output
    assert "Traceback" not in result.output
    assert not (home / "weeks").exists() or not list((home / "weeks").rglob("scores.csv"))
