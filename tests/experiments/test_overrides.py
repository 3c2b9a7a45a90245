"""Override records and the override and agreement rates."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.overrides import override_record, risk_band, summarise_overrides


def decision(**changes):
    values = dict(
        household_id="H1",
        shown_risk=0.2,
        shown_reasons=["3 police call-outs in 13 weeks"],
        proposed_worker="W1",
        chosen_worker="W1",
        decision="accepted",
        reason="",
        manager="M1",
        locality="Hanley",
        recorded_at="2025-01-06T09:00:00",
    )
    return override_record(**(values | changes))


def test_override_record_keeps_what_was_shown_and_checks_consistency():
    record = decision(chosen_worker="W2", decision="changed_worker", reason="W2 knows the family")
    assert record["shown_risk"] == 0.2 and record["risk_band"] == "high"
    assert record["shown_reasons"] == ["3 police call-outs in 13 weeks"]
    assert record["overridden"] and record["proposed_worker"] == "W1"
    with pytest.raises(ValueError, match="reason is required"):
        decision(chosen_worker="W2", decision="changed_worker")
    with pytest.raises(ValueError, match="does not match"):
        decision(decision="changed_worker", reason="x")
    with pytest.raises(ValueError, match="probability"):
        decision(shown_risk=1.5)
    assert not decision()["overridden"]


def test_summarise_overrides_counts_rates_by_locality_and_band():
    records = pd.DataFrame(
        [
            decision(),
            decision(household_id="H2", shown_risk=0.02),
            decision(household_id="H3", chosen_worker="W2", decision="changed_worker", reason="r"),
            decision(
                household_id="H4",
                chosen_worker=None,
                decision="not_allocated",
                reason="r",
                locality="Stoke",
                shown_risk=0.5,
            ),
            decision(
                household_id="H5",
                proposed_worker=None,
                chosen_worker="W3",
                decision="added",
                reason="r",
                locality="Stoke",
                shown_risk=0.01,
            ),
        ]
    )
    summary = summarise_overrides(records).set_index(["dimension", "group"])
    overall = summary.loc[("all", "all")]
    assert overall["decisions"] == 5 and overall["proposed"] == 4 and overall["accepted"] == 2
    assert overall["override_rate"] == pytest.approx(3 / 5)
    assert overall["agreement_rate"] == pytest.approx(2 / 4)
    assert summary.loc[("locality", "Hanley"), "override_rate"] == pytest.approx(1 / 3)
    assert summary.loc[("locality", "Stoke"), "agreement_rate"] == pytest.approx(0.0)
    assert summary.loc[("risk_band", "low"), "decisions"] == 2
    assert summary.loc[("risk_band", "very high"), "not_allocated"] == 1
    bands = summary.loc["risk_band"].index.tolist()
    assert bands == sorted(bands, key=["low", "medium", "high", "very high"].index)


def test_risk_bands_use_lower_edges():
    assert [risk_band(value) for value in (0.0, 0.049, 0.05, 0.15, 0.3, 1.0)] == [
        "low",
        "low",
        "medium",
        "high",
        "very high",
        "very high",
    ]
