"""Needs from a household's own records: the rule (checked against a plain re-statement of it on
random records), the evidence sentences, the settings and their errors."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract import EVENT_TYPES, SKILLS
from features.needs import (
    DEFAULT_LOOKBACK_WEEKS,
    EVENT_SKILLS,
    NeedsSettings,
    household_needs,
    needs_of_records,
    needs_settings_from_mapping,
)

AS_OF = pd.Timestamp("2025-06-30")
HOUSEHOLDS = ["H0", "H1", "H2", "H3"]
ARREARS = ("rent_arrears", "council_tax_arrears")


def events_table(records: list[tuple]) -> pd.DataFrame:
    """(household, event type, days before AS_OF it occurred, days later it was known, value)."""
    return pd.DataFrame(
        {
            "event_id": [f"E{n}" for n in range(len(records))],
            "household_id": pd.array([r[0] for r in records], dtype="str"),
            "person_id": pd.array([pd.NA] * len(records), dtype="str"),
            "source": pd.array([EVENT_TYPES[r[1]].source for r in records], dtype="str"),
            "event_type": pd.array([r[1] for r in records], dtype="str"),
            "occurred_at": pd.to_datetime([AS_OF - pd.Timedelta(days=r[2]) for r in records]),
            "known_at": pd.to_datetime([AS_OF - pd.Timedelta(days=r[2] - r[3]) for r in records]),
            "value": pd.array([r[4] for r in records], dtype="float64"),
        }
    )


def expected_needs(records: list[tuple], rules: NeedsSettings) -> dict[str, str]:
    """The documented rule, one household and one need at a time."""
    result = {}
    for household in HOUSEHOLDS:
        known = [r for r in records if r[0] == household and r[2] - r[3] >= 0]
        needs = set()
        for skill in SKILLS:
            reach = rules.lookback_weeks[skill] * 7
            for event_type in (t for t in EVENT_TYPES if skill in EVENT_SKILLS[t]):
                mine = [r for r in known if r[1] == event_type]
                if event_type in ARREARS:
                    if mine:
                        latest = min(mine, key=lambda r: (r[2], -r[4]))
                        if latest[2] < reach and latest[4] > rules.arrears_threshold:
                            needs.add(skill)
                elif event_type == "school_absence":
                    missed = sum(r[4] for r in mine if r[2] < reach)
                    sessions = rules.persistent_absence_share * 380 * reach / 7 / 52
                    if mine and missed >= sessions - 1e-9 and any(r[2] < reach for r in mine):
                        needs.add(skill)
                elif any(r[2] < reach for r in mine):
                    needs.add(skill)
        result[household] = ";".join(skill for skill in SKILLS if skill in needs)
    return result


def _record(household, event_type, ago, lag, value):
    valued = EVENT_TYPES[event_type].has_value
    return (household, event_type, ago, lag, float(value) if valued else float("nan"))


records_strategy = st.lists(
    st.builds(
        _record,
        st.sampled_from(HOUSEHOLDS),
        st.sampled_from(sorted(EVENT_TYPES)),
        # Ages on and either side of the default look-backs (26 and 52 weeks) are drawn often.
        st.one_of(st.integers(0, 800), st.sampled_from([181, 182, 183, 363, 364, 365])),
        st.integers(0, 60),
        st.integers(0, 1500),
    ),
    max_size=60,
)
settings_strategy = st.builds(
    NeedsSettings,
    lookback_weeks=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 104), max_size=4),
    arrears_threshold=st.sampled_from([0.0, 250.0, 500.0, 1000.0]),
    persistent_absence_share=st.sampled_from([0.05, 0.1, 0.2]),
)


@settings(max_examples=150, deadline=None)
@given(records_strategy, settings_strategy)
def test_a_household_has_a_need_exactly_when_its_records_inside_the_look_back_call_for_it(
    records, rules
):
    events = events_table(records)
    table = household_needs(events, household_ids=HOUSEHOLDS, as_of=AS_OF, settings=rules)
    assert table["needs"].to_dict() == expected_needs(records, rules)
    for household in HOUSEHOLDS:  # one household's records as columns: the same answer
        mine = events.loc[events["household_id"] == household]
        pairs = needs_of_records(
            event_type=mine["event_type"].to_numpy(dtype=object),
            occurred_at=mine["occurred_at"].to_numpy(),
            known_at=mine["known_at"].to_numpy(),
            value=mine["value"].to_numpy(),
            as_of=AS_OF,
            settings=rules,
        )
        assert ";".join(need for need, _ in pairs) == table.loc[household, "needs"]
        assert " | ".join(text for _, text in pairs) == table.loc[household, "needs_evidence"]
    evidence = table["needs_evidence"]
    for household, needs in table["needs"].items():
        sentences = evidence[household].split(" | ") if evidence[household] else []
        assert len(sentences) == len(needs.split(";")) if needs else not sentences


def test_a_domestic_abuse_incident_always_gives_the_need_with_its_evidence():
    records = [
        ("H0", "domestic_abuse_incident", 21, 1, float("nan")),
        ("H0", "domestic_abuse_incident", 200, 3, float("nan")),
        ("H0", "police_callout", 2, 0, float("nan")),
        ("H1", "domestic_abuse_incident", 400, 0, float("nan")),  # outside 52 weeks
        ("H2", "domestic_abuse_incident", 5, 10, float("nan")),  # not known yet
    ]
    table = household_needs(events_table(records), household_ids=HOUSEHOLDS, as_of=AS_OF)
    assert table.loc["H0", "needs"] == "domestic_abuse"
    assert table.loc["H0", "needs_evidence"] == "domestic abuse: 2 incidents, latest 3 weeks ago"
    assert table.loc[["H1", "H2", "H3"], "needs"].tolist() == ["", "", ""]
    assert table.loc[["H1", "H2", "H3"], "needs_evidence"].tolist() == ["", "", ""]


def test_evidence_names_every_kind_of_record_in_needs_order():
    records = [
        ("H0", "rent_arrears", 40, 0, 900.0),
        ("H0", "rent_arrears", 10, 0, 1250.0),
        ("H0", "benefit_sanction", 3, 0, float("nan")),
        ("H0", "child_protection_plan", 100, 0, float("nan")),
        ("H0", "social_care_contact", 8, 0, float("nan")),
        ("H0", "school_absence", 30, 0, 12.0),
        ("H0", "school_absence", 120, 0, 9.0),
        ("H1", "rent_arrears", 10, 0, 300.0),  # below the threshold
        ("H1", "school_absence", 30, 0, 18.0),  # short of 19 sessions in 26 weeks
    ]
    table = household_needs(events_table(records), household_ids=HOUSEHOLDS, as_of=AS_OF)
    assert table.loc["H0", "needs"] == "debt;parenting;school_attendance;employment"
    assert table.loc["H0", "needs_evidence"].split(" | ") == [
        "debt: rent arrears of £1,250, 1 benefit sanction, latest 3 days ago",
        "parenting: 1 contact with children's social care, 1 child protection plan started, "
        "latest 8 days ago",
        "school attendance: 21 sessions missed, latest 4 weeks ago",
        "employment: 1 benefit sanction, latest 3 days ago",
    ]
    assert table.loc["H1", "needs"] == ""


def test_a_cleared_balance_ends_the_debt_need():
    records = [("H0", "rent_arrears", 60, 0, 2000.0), ("H0", "rent_arrears", 20, 0, 0.0)]
    table = household_needs(events_table(records), household_ids=HOUSEHOLDS, as_of=AS_OF)
    assert table.loc["H0", "needs"] == ""


def test_no_records_at_all_gives_no_needs():
    table = household_needs(events_table([]), household_ids=HOUSEHOLDS, as_of=AS_OF)
    assert table.index.tolist() == HOUSEHOLDS
    assert (table["needs"] == "").all() and (table["needs_evidence"] == "").all()


def test_settings_from_the_needs_table():
    rules = needs_settings_from_mapping(
        {"lookback_weeks": {"parenting": 104}, "safeguarding": ["parenting", "domestic_abuse"]}
    )
    assert rules.lookback_weeks["parenting"] == 104
    assert rules.lookback_weeks["debt"] == DEFAULT_LOOKBACK_WEEKS["debt"] == 26
    assert rules.lookback_weeks["domestic_abuse"] == 52
    assert rules.safeguarding == ("domestic_abuse", "parenting")
    assert needs_settings_from_mapping(None) == NeedsSettings()
    assert NeedsSettings().absence_sessions() == pytest.approx(19.0)


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"lookback": {}}, "unknown setting(s) lookback"),
        ({"lookback_weeks": 26}, "must be a table"),
        ({"lookback_weeks": {"cooking": 26}}, "'cooking' is not a need"),
        ({"lookback_weeks": {"debt": 0}}, "lookback_weeks.debt must be whole weeks"),
        ({"lookback_weeks": {"debt": 2.5}}, "lookback_weeks.debt must be whole weeks"),
        ({"arrears_threshold": -1}, "arrears_threshold must be pounds"),
        ({"arrears_threshold": "500"}, "arrears_threshold must be pounds"),
        ({"persistent_absence_share": 10}, "persistent_absence_share must be in (0, 1]"),
        ({"safeguarding": "parenting"}, "safeguarding must be a list"),
        ({"safeguarding": ["child_protection"]}, "'child_protection' is not a need"),
    ],
)
def test_bad_needs_settings_are_refused_naming_the_setting(mapping, words):
    with pytest.raises(ValueError, match="needs") as raised:
        needs_settings_from_mapping(mapping)
    assert words in str(raised.value)
