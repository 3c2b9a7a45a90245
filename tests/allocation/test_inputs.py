"""Empty, infeasible and malformed inputs get clear messages or errors, never a crash; the
locality filter and neighbour rules restrict who may take whom."""

from __future__ import annotations

import pytest

from allocation import (
    AllocationInputError,
    AllocationSettings,
    propose_allocation,
    random_instance,
    read_locks,
)

SETTINGS = AllocationSettings(top_n=60, time_limit_s=5)


@pytest.fixture(scope="module")
def week():
    instance = random_instance(seed=2, households=2000, workers=24)
    return {"scores": instance.scores, "workers": instance.workers, "cases": instance.cases}


def test_no_scores_gives_a_clear_empty_proposal(week):
    proposal = propose_allocation(**week | {"scores": week["scores"].head(0)}, settings=SETTINGS)
    assert proposal.summary["status"] == "no_candidates"
    assert proposal.rows.empty and "explanation" in proposal.rows.columns
    assert any(message.startswith("No candidates") for message in proposal.summary["messages"])
    assert len(proposal.continuing) == int(week["cases"]["closed_at"].isna().sum())


def test_no_active_worker_waitlists_everyone_with_a_reason(week):
    idle = week["workers"].assign(active=False)
    proposal = propose_allocation(**week | {"workers": idle}, settings=SETTINGS)
    assert proposal.summary["status"] == "no_capacity"
    assert (proposal.rows["status"] == "waitlisted").all()
    assert proposal.rows["explanation"].str.startswith("No active key worker").all()
    assert any("No active key worker" in message for message in proposal.summary["messages"])


def test_locality_without_workers_is_named(week):
    workers = week["workers"].assign(
        active=week["workers"]["active"] & (week["workers"]["locality"] != "Longton")
    )
    proposal = propose_allocation(**week | {"workers": workers}, settings=SETTINGS)
    longton = proposal.rows.loc[proposal.rows["locality"] == "Longton"]
    assert len(longton) > 0 and (longton["status"] == "waitlisted").all()
    assert longton["explanation"].str.contains("No active key worker in Longton").all()
    assert any("from Longton" in message for message in proposal.summary["messages"])


def test_locality_filter_restricts_candidates_and_workers(week):
    everyone = propose_allocation(**week, settings=SETTINGS)
    hanley = propose_allocation(**week, locality="Hanley", settings=SETTINGS)
    assert set(hanley.rows["locality"]) == {"Hanley"}
    assert set(hanley.workers["locality"]) == {"Hanley"}
    # The same city-wide top_n, restricted: Hanley's candidates are the city's Hanley candidates.
    city = everyone.rows.loc[everyone.rows["locality"] == "Hanley", "household_id"]
    assert set(hanley.rows["household_id"]) == set(city)
    hanley_workers = set(hanley.workers["worker_id"])
    assert set(hanley.continuing["worker_id"]) <= hanley_workers


def test_unknown_locality_is_a_clear_error(week):
    with pytest.raises(AllocationInputError, match="Hanly.*known localities: Burslem"):
        propose_allocation(**week, locality="Hanly", settings=SETTINGS)


def test_neighbour_rule_lets_named_localities_share_workers(week):
    # Tunstall has no active worker this week; Burslem may take Tunstall's households.
    workers = week["workers"].assign(
        active=week["workers"]["active"] & (week["workers"]["locality"] != "Tunstall")
    )
    inputs = week | {"workers": workers}
    alone = propose_allocation(**inputs, settings=SETTINGS)
    shared = propose_allocation(
        **inputs,
        settings=AllocationSettings(
            top_n=60, time_limit_s=5, neighbours={"Tunstall": ("Burslem",)}
        ),
    )
    tunstall = shared.rows.loc[
        (shared.rows["locality"] == "Tunstall") & (shared.rows["status"] == "assigned")
    ]
    assert (alone.rows.loc[alone.rows["locality"] == "Tunstall", "status"] == "waitlisted").all()
    assert len(tunstall) > 0
    homes = workers.set_index("worker_id")["locality"]
    assert set(tunstall["worker_id"].map(homes)) == {"Burslem"}
    assert (
        tunstall["explanation"].str.contains("neighbouring locality (Burslem)", regex=False).all()
    )
    # One direction only: Burslem's households still go to Burslem workers.
    burslem = shared.rows.loc[
        (shared.rows["locality"] == "Burslem") & (shared.rows["status"] == "assigned")
    ]
    assert set(burslem["worker_id"].map(homes)) == {"Burslem"}


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("risk", 1.5, "row 1 .*column risk"),
        ("needs", "debt;cooking", "row 1 .*column needs"),
        ("household_id", "H000002", "row 2 .*duplicate household"),
    ],
)
def test_bad_scores_name_row_and_column(week, column, value, words):
    scores = week["scores"].copy()
    scores.loc[0, column] = value
    with pytest.raises(AllocationInputError, match=f"scores {words}"):
        propose_allocation(**week | {"scores": scores}, settings=SETTINGS)


def test_bad_worker_capacity_names_the_worker(week):
    workers = week["workers"].copy()
    workers.loc[3, "capacity_points"] = 0
    with pytest.raises(AllocationInputError, match="workers row 4 .*W004.*capacity_points"):
        propose_allocation(**week | {"workers": workers}, settings=SETTINGS)


def test_invalid_settings_are_refused():
    with pytest.raises(AllocationInputError, match="max_points"):
        AllocationSettings(base_points=10, max_points=8)


def test_read_locks_accepts_a_managers_file(tmp_path):
    path = tmp_path / "locks.csv"
    path.write_text(
        "\ufeffHousehold_ID,worker_id,kind,note\nH1, W2 ,Assign,agreed at panel\nH3,W2,exclude,\n",
        encoding="utf-8",
    )
    locks = read_locks(path)
    assert locks.to_dict("records") == [
        {"household_id": "H1", "worker_id": "W2", "kind": "assign"},
        {"household_id": "H3", "worker_id": "W2", "kind": "exclude"},
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("household_id,worker_id\nH1,W2\n", "missing column"),
        (
            "household_id,worker_id,kind\nH1,W2,assign\nH2,W3,asign\n",
            "line 3, column kind: 'asign'",
        ),
        ("household_id,worker_id,kind\nH1,,assign\n", "line 2, column worker_id: empty"),
    ],
)
def test_read_locks_names_file_line_and_column(tmp_path, text, words):
    path = tmp_path / "locks.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AllocationInputError, match=f"locks.csv.*{words}"):
        read_locks(path)


def test_read_locks_missing_file(tmp_path):
    with pytest.raises(AllocationInputError, match="not found"):
        read_locks(tmp_path / "nope.csv")
