"""A past week re-run on a newer extract: the caseloads counted by the rule the allocation used
before issue 13 (opened by the date, no closing date in the extract) against the one rule
(features.cases.open_cases as of the date), and the proposal each gives.

    .venv/bin/python bench/bench_past_week.py

On the 20,000-household city, 26 weeks before its extract ends (figures in docs/performance.md).
"""

import sys
from datetime import date
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from allocation import AllocationSettings, propose_allocation  # noqa: E402
from experiments.city import generate_city  # noqa: E402
from experiments.training import fit_and_audit  # noqa: E402
from features.cases import open_cases  # noqa: E402
from models import ChampionModel, TrainSettings, score_households  # noqa: E402

END = date(2025, 6, 30)


def main() -> None:
    city = generate_city(households=20000, seed=0, end=END)
    tables = {name: table for name, table in city.tables().items() if name != "truth"}
    as_of = pd.Timestamp(END) - pd.Timedelta(weeks=26)
    cases, workers = tables["cases"], tables["workers"]
    old_open = cases.loc[(cases["opened_at"] <= as_of) & cases["closed_at"].isna()]
    new_open = open_cases(cases, as_of=as_of)
    old_load = old_open.groupby("worker_id")["complexity_points"].sum()
    new_load = new_open.groupby("worker_id")["complexity_points"].sum()
    diff = new_load.reindex(workers["worker_id"]).fillna(0) - old_load.reindex(
        workers["worker_id"]
    ).fillna(0)
    print(
        f"as of {as_of.date()}: open cases old rule {len(old_open)}, as of the date {len(new_open)}"
    )
    print(
        f"workers whose load the old rule understated: {(diff > 0).sum()}, "
        f"by up to {int(diff.max())} points"
    )
    outcome = fit_and_audit(
        tables=tables, as_of=as_of, settings=TrainSettings(folds=1, history_dates=2, num_threads=2)
    )
    model = ChampionModel(
        estimator=outcome.model, name="m", version="1", run_id="r", horizon_weeks=26
    )
    scores = score_households(tables=tables, as_of=as_of, model=model)
    rules = AllocationSettings()
    old = propose_allocation(
        scores=scores, workers=workers, cases=cases.loc[cases["opened_at"] <= as_of], settings=rules
    )
    new = propose_allocation(
        scores=scores, workers=workers, cases=cases, settings=rules, as_of=as_of
    )
    print(
        "proposed for a key worker: old rule",
        old.summary["assigned"],
        "as of the date",
        new.summary["assigned"],
    )
    over = new.workers.assign(load=lambda f: f["points_after"]).loc[
        lambda f: f["points_after"] > f["capacity_points"]
    ]
    oldw = old.workers.set_index("worker_id")
    true_after = new_load.reindex(oldw.index).fillna(0) + oldw["new_points"]
    print(
        "old proposal, workers over capacity when their real caseload is counted:",
        int((true_after > oldw["capacity_points"]).sum()),
    )
    print("new proposal, workers over capacity:", len(over))


if __name__ == "__main__":
    main()
