"""The synthetic city: determinism, the data contract, calibration and the truth it reports.

The contract checks here are written independently of features.validation on purpose: they read
the written CSV files as plain text, the way a partner's file would arrive.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from experiments.city import CitySimulator, generate_city, parse_under_reporting, write_city
from features.contract import (
    CLOSE_REASONS,
    CRISIS_EVENT_TYPES,
    DISABILITY,
    ETHNICITIES,
    EVENT_TYPES,
    LOCALITIES,
    SEXES,
    SKILLS,
    TENURES,
    column_names,
)

END = date(2024, 9, 29)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def city_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A city of 4,000 households with the default 3.5 years of history, written as CSV."""
    city = generate_city(households=4_000, seed=7, end=END)
    folder = tmp_path_factory.mktemp("city")
    write_city(city, folder)
    return folder


def _read(folder: Path, table: str) -> pd.DataFrame:
    """A written table as text, exactly as in the file (empty cells stay empty strings)."""
    text = (folder / f"{table}.csv").read_bytes().decode("utf-8")
    assert text.endswith("\n")
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def tables(city_folder: Path) -> dict[str, pd.DataFrame]:
    names = ("households", "people", "events", "workers", "cases", "truth")
    return {name: _read(city_folder, name) for name in names}


def _small_city_bytes(folder: Path, *, seed: int) -> dict[str, bytes]:
    city = generate_city(households=1_500, seed=seed, end=END, history_weeks=60)
    paths = write_city(city, folder)
    return {name: path.read_bytes() for name, path in paths.items()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _small_city_bytes(tmp_path / "a", seed=3)
    again = _small_city_bytes(tmp_path / "b", seed=3)
    other = _small_city_bytes(tmp_path / "c", seed=4)
    assert set(first) == {"households", "people", "events", "workers", "cases", "truth"}
    assert first == again
    assert first["events"] != other["events"]
    assert first["households"] != other["households"]


def test_parquet_holds_the_same_tables_as_csv(tmp_path: Path) -> None:
    city = generate_city(households=800, seed=5, end=END, history_weeks=60)
    csv_paths = write_city(city, tmp_path / "csv")
    parquet_paths = write_city(city, tmp_path / "parquet", fmt="parquet")
    for name in ("events", "cases", "truth"):
        from_csv = pd.read_csv(csv_paths[name], dtype=str, keep_default_na=False)
        from_parquet = pd.read_parquet(parquet_paths[name]).astype(str)
        from_parquet = from_parquet.replace({"None": "", "nan": "", "NaT": ""})
        assert list(from_parquet.columns) == list(from_csv.columns)
        for column in ("household_id", "occurred_at", "opened_at", "as_of"):
            if column in from_csv:
                assert (from_parquet[column] == from_csv[column]).all(), (name, column)
    with pytest.raises(ValueError, match="fmt"):
        write_city(city, tmp_path / "x", fmt="xlsx")


def test_tables_have_exactly_the_contract_columns(tables: dict[str, pd.DataFrame]) -> None:
    for name in ("households", "people", "events", "workers", "cases"):
        assert list(tables[name].columns) == column_names(name)
    assert list(tables["truth"].columns) == ["as_of", "household_id", "p_true", "escalated"]


def test_keys_are_unique_and_foreign_keys_resolve(tables: dict[str, pd.DataFrame]) -> None:
    households, people, events = tables["households"], tables["people"], tables["events"]
    workers, cases = tables["workers"], tables["cases"]
    for frame, key in [
        (households, "household_id"),
        (people, "person_id"),
        (events, "event_id"),
        (workers, "worker_id"),
        (cases, "case_id"),
    ]:
        assert (frame[key] != "").all() and frame[key].is_unique, key
    known_households = set(households.household_id)
    for frame in (people, events, cases):
        assert set(frame.household_id) <= known_households
    assert set(cases.worker_id) <= set(workers.worker_id)
    home = people.set_index("person_id").household_id
    with_person = events[events.person_id != ""]
    assert with_person.person_id.isin(home.index).all()
    assert (with_person.household_id.to_numpy() == home[with_person.person_id].to_numpy()).all()


def test_households_and_people_use_the_vocabularies(tables: dict[str, pd.DataFrame]) -> None:
    households, people = tables["households"], tables["people"]
    assert set(households.locality) == set(LOCALITIES)
    assert households.groupby("ward").locality.nunique().max() == 1
    assert 30 <= households.ward.nunique() <= 40
    assert set(households.tenure) == set(TENURES)
    assert set(people.sex) <= set(SEXES)
    assert set(people.ethnicity) <= set(ETHNICITIES)
    assert set(people.disability) <= set(DISABILITY)
    adults, children = households.adults.astype(int), households.children.astype(int)
    assert (adults >= 1).all() and (children >= 0).all()
    # The counts agree with the people who live there, aged as at the extract year.
    age = END.year - people.birth_year.astype(int)
    counted = pd.DataFrame({"household_id": people.household_id, "adult": age >= 18})
    by_household = counted.groupby("household_id").adult.agg(["sum", "size"])
    by_household = by_household.reindex(households.household_id)
    assert (by_household["sum"].to_numpy() == adults.to_numpy()).all()
    assert (by_household["size"].to_numpy() == (adults + children).to_numpy()).all()


def test_events_keep_the_event_vocabulary(tables: dict[str, pd.DataFrame]) -> None:
    events = tables["events"]
    assert set(events.event_type) == set(EVENT_TYPES), "every event type occurs"
    expected_source = events.event_type.map(
        {name: kind.source for name, kind in EVENT_TYPES.items()}
    )
    assert (events.source == expected_source).all()
    valued = events.event_type.map({name: kind.has_value for name, kind in EVENT_TYPES.items()})
    assert (events.value[~valued] == "").all()
    values = pd.to_numeric(events.value[valued], errors="raise")
    assert values.notna().all() and (values > 0).all()
    absence = pd.to_numeric(events.value[events.event_type == "school_absence"])
    assert (absence == absence.round()).all()
    for column in ("occurred_at", "known_at"):
        assert events[column].str.match(ISO_DATE).all()


def test_nothing_is_known_before_it_happens_or_after_end(tables: dict[str, pd.DataFrame]) -> None:
    events, cases = tables["events"], tables["cases"]
    occurred, known = pd.to_datetime(events.occurred_at), pd.to_datetime(events.known_at)
    assert (known >= occurred).all()
    assert known.max() <= pd.Timestamp(END)
    # Agencies differ: the police report within days, the NHS within weeks.
    lag = (known - occurred).dt.days
    assert lag[events.source == "police"].median() < lag[events.source == "nhs"].median()
    assert lag[events.source == "nhs"].between(7, 21).all()
    assert pd.to_datetime(cases.opened_at).max() <= pd.Timestamp(END)
    closed = cases.closed_at[cases.closed_at != ""]
    assert pd.to_datetime(closed).max() <= pd.Timestamp(END)


def test_events_are_about_the_right_people(tables: dict[str, pd.DataFrame]) -> None:
    events, people = tables["events"], tables["people"]
    birth_year = people.set_index("person_id").birth_year.astype(int)
    about = events[events.person_id != ""]
    age = (
        pd.to_datetime(about.occurred_at).dt.year.to_numpy()
        - birth_year[about.person_id].to_numpy()
    )
    kind = about.event_type.to_numpy()
    assert (age >= 0).all(), "nobody has an event before they are born"
    assert (age[np.isin(kind, ["school_absence", "school_exclusion"])] <= 17).all()
    assert (age[np.isin(kind, ["school_absence", "school_exclusion"])] >= 4).all()
    assert (age[np.isin(kind, ["child_protection_plan", "child_taken_into_care"])] <= 17).all()
    assert (age[np.isin(kind, ["unemployment_claim", "probation_breach"])] >= 18).all()
    household_level = events.event_type.isin(
        ["rent_arrears", "council_tax_arrears", "possession_order", "asb_report"]
    )
    assert (events.person_id[household_level] == "").all()


def test_workers_and_cases_keep_the_contract(tables: dict[str, pd.DataFrame]) -> None:
    workers, cases = tables["workers"], tables["cases"]
    skills = workers.skills.str.split(";")
    assert skills.map(lambda names: set(names) <= set(SKILLS) and 2 <= len(names) <= 4).all()
    assert (workers.capacity_points.astype(int) > 0).all()
    assert set(workers.active) <= {"true", "false"}
    abuse_workers = workers[
        workers.active.eq("true") & workers.skills.str.contains("domestic_abuse")
    ]
    assert set(abuse_workers.locality) == set(LOCALITIES)
    assert cases.complexity_points.astype(int).between(8, 32).all()
    open_cases = cases[cases.closed_at == ""]
    assert open_cases.household_id.is_unique
    assert (open_cases.close_reason == "").all()
    closed = cases[cases.closed_at != ""]
    assert set(closed.close_reason) <= set(CLOSE_REASONS) and (closed.close_reason != "").all()
    assert (pd.to_datetime(closed.closed_at) >= pd.to_datetime(closed.opened_at)).all()
    assert len(closed) > len(open_cases) > 0
    assert open_cases.worker_id.isin(workers.worker_id[workers.active == "true"]).all()


def test_open_cases_use_most_but_not_all_of_active_capacity() -> None:
    simulator = CitySimulator(households=30_000, seed=5, start=date(2023, 1, 2))
    loads = []
    for week in range(40):
        simulator.step()
        if week % 8 == 7:
            cases, workers = simulator.cases(), simulator.workers()
            open_points = cases.complexity_points[cases.closed_at.isna()].sum()
            loads.append(open_points / workers.capacity_points[workers.active].sum())
            load_by_worker = (
                cases[cases.closed_at.isna()].groupby("worker_id").complexity_points.sum()
            )
            capacity = workers.set_index("worker_id").capacity_points
            assert (load_by_worker <= capacity[load_by_worker.index]).all()
    assert 0.58 <= np.mean(loads) <= 0.78


def test_tier_shares_match_stoke_among_households_known_to_services() -> None:
    simulator = CitySimulator(households=5_000, seed=11, start=date(2022, 1, 3))
    counts = np.zeros(4)
    for week in range(52):
        simulator.step()
        if week % 4 == 3:
            counts += np.bincount(simulator.hidden_state().tier, minlength=4)
    known = counts[1:] / counts[1:].sum()
    assert 0.58 <= known[0] <= 0.70
    assert 0.25 <= known[1] <= 0.37
    assert 0.03 <= known[2] <= 0.08


def test_escalation_rate_and_truth_calibration(tables: dict[str, pd.DataFrame]) -> None:
    truth = tables["truth"]
    p_true = truth.p_true.astype(float)
    escalated = truth.escalated.astype(int)
    assert set(escalated) == {0, 1}
    assert p_true.between(0.0, 1.0).all()
    assert truth.as_of.nunique() == 26
    assert pd.to_datetime(truth.as_of).max() == pd.Timestamp(END - timedelta(weeks=26))
    rate = escalated.mean()
    assert 0.04 <= rate <= 0.08
    assert abs(p_true.mean() - rate) <= 0.01
    # Calibrated across the range, not just on average: the riskiest tenth escalate as predicted.
    top = p_true >= p_true.quantile(0.9)
    assert abs(escalated[top].mean() - p_true[top].mean()) <= 0.05
    assert escalated[top].mean() > 3 * rate


def test_escalation_matches_crisis_events_in_the_extract(tables: dict[str, pd.DataFrame]) -> None:
    truth, events = tables["truth"], tables["events"]
    crises = events[events.event_type.isin(CRISIS_EVENT_TYPES)]
    occurred = pd.to_datetime(crises.occurred_at)
    as_of = pd.Timestamp(END - timedelta(weeks=50))
    in_window = (occurred > as_of) & (occurred <= as_of + pd.Timedelta(weeks=26))
    recorded = set(crises.household_id[in_window])
    labelled = truth[pd.to_datetime(truth.as_of) == as_of]
    assert set(labelled.household_id[labelled.escalated == "1"]) == recorded


def test_signals_precede_crises_noisily(tables: dict[str, pd.DataFrame]) -> None:
    truth, events = tables["truth"], tables["events"]
    known = pd.to_datetime(events.known_at)
    aucs = []
    for as_of, labelled in truth.groupby(pd.to_datetime(truth.as_of)):
        recent = events[(known <= as_of) & (known > as_of - pd.Timedelta(weeks=26))]
        non_crisis = recent[~recent.event_type.isin(CRISIS_EVENT_TYPES)]
        counts = labelled.household_id.map(non_crisis.household_id.value_counts()).fillna(0)
        aucs.append(roc_auc_score(labelled.escalated.astype(int), counts))
    # Real signal for a model to find, but far from a give-away.
    assert 0.62 <= np.mean(aucs) <= 0.9


def test_open_case_lowers_crisis_hazard_by_about_the_case_effect() -> None:
    crises_in_case_weeks = {}
    for case_effect in (0.0, 0.2):
        simulator = CitySimulator(
            households=3_000,
            seed=2,
            start=date(2022, 1, 3),
            case_effect=case_effect,
            case_recovery=0.0,
            households_per_worker=40,
        )
        total = 0
        for _ in range(52):
            with_case = simulator.hidden_state().case_open.to_numpy()
            simulator.step()
            total += with_case[simulator.crisis_weeks()[-1]].sum()
        crises_in_case_weeks[case_effect] = total
    assert crises_in_case_weeks[0.0] >= 150
    ratio = crises_in_case_weeks[0.2] / crises_in_case_weeks[0.0]
    assert 0.7 <= ratio <= 0.9


def test_under_reporting_thins_records_but_leaves_need_and_crises_alone() -> None:
    bias = {"asian": {"police_callout": 0.3, "asb_report": 0.3, "ae_attendance": 0.3}}
    fair = generate_city(households=2_000, seed=9, end=END, history_weeks=60)
    biased = generate_city(
        households=2_000, seed=9, end=END, history_weeks=60, under_reporting=bias
    )
    pd.testing.assert_frame_equal(fair.truth, biased.truth)
    reference = fair.people.drop_duplicates("household_id").set_index("household_id").ethnicity
    columns = ["household_id", "person_id", "event_type", "occurred_at", "known_at", "value"]

    def split(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        affected = (reference[events.household_id].to_numpy() == "asian") & events.event_type.isin(
            list(bias["asian"])
        ).to_numpy()
        return events[affected][columns], events[~affected][columns].reset_index(drop=True)

    fair_affected, fair_rest = split(fair.events)
    biased_affected, biased_rest = split(biased.events)
    pd.testing.assert_frame_equal(fair_rest, biased_rest)
    assert len(fair_affected) >= 50
    assert 0.15 <= len(biased_affected) / len(fair_affected) <= 0.45


def test_step_opens_allocated_cases_and_refuses_bad_allocations() -> None:
    simulator = CitySimulator(
        households=1_000, seed=4, start=date(2023, 1, 2), background_referrals=False
    )
    simulator.step()
    open_before = simulator.cases().closed_at.isna().sum()
    households = simulator.households()
    free = households.household_id[~households.household_id.isin(simulator.cases().household_id)]
    workers = simulator.workers().set_index("worker_id")
    open_cases = simulator.cases().query("closed_at.isna()")
    load = open_cases.groupby("worker_id").complexity_points.sum()
    remaining = workers.capacity_points.sub(load, fill_value=0)[workers.active]
    worker = remaining.idxmax()
    allocation = pd.DataFrame(
        {"household_id": [free.iloc[0]], "worker_id": [worker], "complexity_points": [12]}
    )
    events = simulator.step(allocation)
    assert list(events.columns) == column_names("events")
    cases = simulator.cases()
    opened = cases[cases.household_id == free.iloc[0]]
    assert len(opened) == 1 and opened.worker_id.iloc[0] == worker
    assert opened.opened_at.iloc[0] == pd.Timestamp(date(2023, 1, 9))
    assert cases.closed_at.isna().sum() <= open_before + 1
    with pytest.raises(ValueError, match=r"row 1, column household_id: .*open case"):
        simulator.step(allocation)
    unknown = allocation.assign(household_id=[free.iloc[1]], worker_id=["KW9999"])
    with pytest.raises(ValueError, match=r"row 1, column worker_id: unknown worker_id 'KW9999'"):
        simulator.step(unknown)
    too_big = allocation.assign(household_id=[free.iloc[1]], complexity_points=[1000])
    with pytest.raises(ValueError, match=r"row 1, column worker_id: .*remaining capacity"):
        simulator.step(too_big)


def test_bad_arguments_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="week ends"):
        generate_city(
            households=500, end=END, history_weeks=60, truth_as_of=[END - timedelta(days=200)]
        )
    with pytest.raises(ValueError, match="unknown event type 'burglary'"):
        generate_city(
            households=500, end=END, history_weeks=60, under_reporting={"asian": {"burglary": 0.5}}
        )
    with pytest.raises(ValueError, match="households must be at least"):
        generate_city(households=10, end=END)
    assert parse_under_reporting(
        "asian:police_callout=0.6,asb_report=0.5;tenure=owner:arrest=0.9"
    ) == {
        "asian": {"police_callout": 0.6, "asb_report": 0.5},
        "tenure=owner": {"arrest": 0.9},
    }
    with pytest.raises(ValueError, match="not a number"):
        parse_under_reporting("asian:police_callout=often")


def test_truth_past_end_is_simulated_but_not_written() -> None:
    late = END - timedelta(weeks=4)
    city = generate_city(households=1_000, seed=1, end=END, history_weeks=60, truth_as_of=[late])
    assert pd.Timestamp(late) == city.truth.as_of.iloc[0]
    assert city.events.known_at.max() <= pd.Timestamp(END)
    assert city.truth.escalated.between(0, 1).all() and city.truth.escalated.sum() > 0
