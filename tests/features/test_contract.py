"""The contract in code (features.contract) and the data team's page agree."""

from __future__ import annotations

from pathlib import Path

from features.contract import EVENT_TYPES, TABLE_NAMES, table_dtypes


def test_the_data_team_documentation_covers_every_column_and_event_type():
    document = (Path(__file__).parents[2] / "docs" / "data-contract.md").read_text()

    for name in TABLE_NAMES:
        assert f"### {name}" in document
        for column in table_dtypes(name):
            assert f"`{column}`" in document, column
    for event_type, kind in EVENT_TYPES.items():
        crisis = "yes" if kind.crisis else "no"
        row = next(line for line in document.splitlines() if line.startswith(f"| `{event_type}` |"))
        assert f"| {kind.source} |" in row and row.rstrip().endswith(f"| {crisis} |"), row
