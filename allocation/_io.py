"""Writing a proposal to disk (proposal.csv + proposal.json + proposal-workers.csv +
proposal-continuing.csv) and reading it back, so two saved proposals can be compared."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from allocation._settings import AllocationInputError, Proposal

_TEXT = "str"
_ROW_DTYPES = {
    "household_id": _TEXT,
    "locality": _TEXT,
    "needs": _TEXT,
    "needs_evidence": _TEXT,
    "status": _TEXT,
    "worker_id": _TEXT,
    "explanation": _TEXT,
    "rank": "int64",
    "points": "int64",
    "risk": "float64",
    "value": "float64",
}
_WORKER_DTYPES = {"worker_id": _TEXT, "locality": _TEXT, "skills": _TEXT}
_CONTINUING_DTYPES = {
    "case_id": _TEXT,
    "household_id": _TEXT,
    "worker_id": _TEXT,
    "locality": _TEXT,
    "status": _TEXT,
    "explanation": _TEXT,
    "risk": "float64",
    "rank": "Int64",
}
_LOCK_COLUMNS = ["household_id", "worker_id", "kind", "status", "reason"]


def proposal_paths(out: Path | str) -> dict[str, Path]:
    """Where each part goes: `out` is the CSV path (a folder gets proposal.csv inside it)."""
    out = Path(out)
    csv = out if out.suffix.lower() == ".csv" else out / "proposal.csv"
    return {
        "rows": csv,
        "summary": csv.with_suffix(".json"),
        "workers": csv.with_name(f"{csv.stem}-workers.csv"),
        "continuing": csv.with_name(f"{csv.stem}-continuing.csv"),
    }


def write_proposal(proposal: Proposal, *, out: Path | str) -> list[Path]:
    """Write proposal.csv with proposal.json, proposal-workers.csv and proposal-continuing.csv
    beside it; returns the paths written."""
    paths = proposal_paths(out)
    paths["rows"].parent.mkdir(parents=True, exist_ok=True)
    proposal.rows.to_csv(paths["rows"], index=False)
    proposal.workers.to_csv(paths["workers"], index=False)
    continuing = proposal.continuing.assign(
        opened_at=pd.to_datetime(proposal.continuing["opened_at"]).dt.strftime("%Y-%m-%d")
    )
    continuing.to_csv(paths["continuing"], index=False)
    document = dict(proposal.summary) | {
        "lock_report": proposal.lock_report[_LOCK_COLUMNS].to_dict(orient="records")
    }
    paths["summary"].write_text(
        json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return list(paths.values())


def _read_csv(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    if not path.is_file():
        raise AllocationInputError(f"{path}: missing (write_proposal writes it beside the CSV)")
    return pd.read_csv(path, dtype=dtypes)


def read_proposal(path: Path | str) -> Proposal:
    """Read back what write_proposal wrote (for compare_proposals)."""
    paths = proposal_paths(path)
    rows = _read_csv(paths["rows"], _ROW_DTYPES)
    # CSV cannot tell an empty needs list from a missing one; the proposal always has a list.
    rows = rows.assign(
        locked=rows["locked"].astype("str").str.lower().eq("true"), needs=rows["needs"].fillna("")
    )
    if "needs_evidence" in rows.columns:
        rows["needs_evidence"] = rows["needs_evidence"].fillna("")
    workers = _read_csv(paths["workers"], _WORKER_DTYPES)
    continuing = _read_csv(paths["continuing"], _CONTINUING_DTYPES)
    continuing = continuing.assign(opened_at=pd.to_datetime(continuing["opened_at"]))
    if not paths["summary"].is_file():
        raise AllocationInputError(f"{paths['summary']}: missing")
    try:
        document = json.loads(paths["summary"].read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AllocationInputError(f"{paths['summary']}: not valid JSON ({error})") from None
    locks = pd.DataFrame(document.pop("lock_report", []), columns=_LOCK_COLUMNS).astype(_TEXT)
    return Proposal(
        rows=rows, workers=workers, continuing=continuing, summary=document, lock_report=locks
    )
