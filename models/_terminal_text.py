"""An explanation as plain text for a terminal (the CLI's `rebalance explain`)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def _percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.01 else f"{probability:.1%}"


def _date(iso: str) -> str:
    return pd.Timestamp(iso).strftime("%-d %b %Y")


def _entry_line(entry: Mapping[str, object]) -> str:
    about = f" ({entry['about']})" if entry["about"] else ""
    return f"  {_date(entry['date']):>11}  {entry['agency']:<24} {entry['what']}{about}"


def _changes_lines(changed: Mapping[str, object]) -> list[str]:
    lines = [f"What changed since {_date(changed['previous_as_of'])}:"]
    if changed["risk_then"] is not None:
        lines.append(
            f"  Risk {_percent(changed['risk_then'])} ({changed['band_then']}) -> "
            f"{_percent(changed['risk_now'])} ({changed['band_now']})"
        )
    lines += [f"  New reason: {text}" for text in changed["reasons_appeared"]]
    lines += [f"  No longer a reason: {text}" for text in changed["reasons_faded"]]
    records = changed["new_records"]
    lines.append(f"  {len(records)} new record{'s' if len(records) != 1 else ''} shared")
    return lines + [_entry_line(entry) for entry in records]


def _needs_lines(explanation: Mapping[str, object]) -> list[str]:
    """Each need with the records behind it (older explanations: the needs alone)."""
    evidence = explanation.get("needs_evidence")
    if not evidence:
        return [f"Needs: {explanation['needs'].replace(';', ', ') or 'none identified'}"]
    return ["Needs, from the household's records:"] + [f"  {item['evidence']}" for item in evidence]


def format_explanation(explanation: Mapping[str, object], *, timeline_lines: int = 25) -> str:
    """The explanation as plain text for a terminal (the CLI's `rebalance explain`)."""
    lines = [
        f"Household {explanation['household_id']} as of {_date(explanation['as_of'])}",
        f"Risk of a crisis within {explanation['horizon_weeks']} weeks: "
        f"{_percent(explanation['risk'])} ({explanation['band']})",
        "",
    ]
    if explanation["reasons"]:
        lines.append("Why (share of what pushes the risk up):")
        lines += [
            f"  {rank}. {reason['text']} ({reason['share']:.0%})"
            for rank, reason in enumerate(explanation["reasons"], start=1)
        ]
    else:
        lines.append(str(explanation["no_strong_reason"]))
    lines += [*_needs_lines(explanation), ""]
    if explanation["what_changed"] is not None:
        lines += [*_changes_lines(explanation["what_changed"]), ""]
    entries = explanation["timeline"]
    lines.append(f"Timeline, most recent first ({len(entries)} records):")
    lines += [_entry_line(entry) for entry in entries[:timeline_lines]]
    if len(entries) > timeline_lines:
        lines.append(f"  ... and {len(entries) - timeline_lines} earlier records (see --json)")
    return "\n".join(lines)
