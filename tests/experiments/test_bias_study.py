"""The under-reporting study (a small city: this checks the wiring, docs/fairness.md the size)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from experiments.bias_study import run_bias_study
from experiments.fairness import (
    FairnessGate,
)
from models import TrainSettings
from tests.experiments.fairness.constructed import (
    row,
)


@pytest.mark.slow
def test_bias_study_compares_the_same_lives_and_reports_its_audits(tmp_path):
    study = run_bias_study(
        households=1000,
        seed=5,
        end=date(2025, 6, 29),
        group="locality=Hanley",
        event_types=["police_callout", "ae_attendance", "social_care_contact"],
        reporting_probability=0.0,
        out_dir=tmp_path,
        k=0.1,
        settings=TrainSettings(
            folds=2,
            history_dates=3,
            n_estimators=40,
            early_stopping_rounds=10,
            min_child_samples=50,
            logistic_max_rows=1000,
        ),
        gate=FairnessGate(min_households=50, min_positives=5),
    )
    control, biased = study.arms["control"], study.arms["under-reported"]
    # Same seed, same lives: only the records differ, so true outcomes agree group by group.
    for stage in ("before", "after"):
        columns = ["attribute", "group", "households", "positives"]
        pd.testing.assert_frame_equal(
            control.audits[f"truth_{stage}"][columns], biased.audits[f"truth_{stage}"][columns]
        )
    for arm in study.arms.values():
        before, after = arm.audits["recorded_before"], arm.audits["recorded_after"]
        assert before["k"].iloc[0] == after["k"].iloc[0] == 100
        hanley = row(after, "locality", "Hanley")
        assert f"| {arm.name} | recorded | after | {hanley['households']:,} |" in study.report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["under-reported/recorded_before"]["recall_at_k"] == pytest.approx(
        row(biased.audits["recorded_before"], "locality", "Hanley")["recall_at_k"]
    )
    assert (tmp_path / "report.md").read_text() == study.report
    assert (tmp_path / "audit_under_reported_before.png").stat().st_size > 0
