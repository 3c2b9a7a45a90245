"""rebalance.toml: what the product cannot use is refused in one plain line naming the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REBALANCE = Path(sys.executable).parent / "rebalance"


@pytest.mark.parametrize(
    "toml",
    [
        '[needs]\nsafeguarding = ["domestic_abuse", "telepathy"]\n',
        '[allocation]\nsafeguarding = ["domestic_abuse"]\n',
        '[labels]\ncrisis_types = ["alien_visit"]\n',
        "[needs\n",
    ],
)
def test_a_settings_file_the_product_cannot_use_is_one_plain_line(tmp_path, toml):
    (tmp_path / "rebalance.toml").write_text(toml, encoding="utf-8")
    result = subprocess.run(
        [str(REBALANCE), "allocate", "--out", str(tmp_path / "p.csv")],
        env=os.environ | {"REBALANCE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'rebalance.toml'}")
