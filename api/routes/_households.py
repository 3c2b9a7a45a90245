"""What the household endpoints show: one household's record, a caseload, a locality's list.

Every answer here is household-level data, so each read function checks api.access and writes
the audit log (allowed or refused) before it returns anything. Figures come from the weekly
run's scores (what managers were shown); "what changed" compares them with the previous run's.

One household's record is read far more often than it changes, so its JSON body and its page's
record section are made once per week and kept on the LoadedWeek (`week.bodies`). What can
change within a week, who holds the household (a manager's decision opens a case), is looked
up afresh on every request: it decides who may see the household, and it is joined to the kept
body per request (the page section is kept per set of key workers). Access is checked and the
read audited before any kept body is touched, so a body never reaches someone who may not see
the household, whoever asked for it first.
"""

from __future__ import annotations

import json
import re

import pandas as pd
from markupsafe import Markup

from api import access, service_db
from api.audit import AuditWriter, audited, audited_async
from api.deps import LoadedWeek, split_needs, split_reasons
from api.routes import TEMPLATES
from api.service_db import ServiceDB

# --- who holds a household ----------------------------------------------------------------------


def key_workers(week: LoadedWeek, db: ServiceDB, household_id: str) -> list[str]:
    """Workers with an open case for the household: partners' records, then managers' decisions."""
    workers = []
    open_worker = week.rows.value(household_id, "open_case_worker")
    if open_worker:
        workers.append(open_worker)
    for case in service_db.decided_cases_of_household(db.read(), household_id=household_id):
        if week.decided_case_open(household_id=household_id, opened_at=case["opened_at"]):
            workers.append(case["worker_id"])
    return sorted(set(workers))


def household_scope(
    week: LoadedWeek, db: ServiceDB, household_id: str
) -> access.HouseholdScope | None:
    locality = week.rows.value(household_id, "locality")
    if locality is None:
        return None
    return access.HouseholdScope(
        household_id=household_id,
        locality=locality,
        key_workers=frozenset(key_workers(week, db, household_id)),
    )


def caseload_ids(week: LoadedWeek, db: ServiceDB, worker_id: str) -> list[str]:
    decided = [
        case["household_id"]
        for case in service_db.decided_cases_of_worker(db.read(), worker_id=worker_id)
        if case["household_id"] in week.rows
        and week.decided_case_open(household_id=case["household_id"], opened_at=case["opened_at"])
    ]
    return sorted(set(week.caseloads.get(worker_id, ())) | set(decided))


def _previous_row(week: LoadedWeek, household_id: str) -> dict | None:
    return None if week.previous_rows is None else week.previous_rows.get(household_id)


def _reason_kind(text: str) -> str:
    # "3 call-outs, the latest 5 weeks ago" is the same reason as last week's "... 4 weeks ago":
    # compare the wording, not the figures, so only genuinely new or gone reasons are listed.
    return re.sub(r"[£\d][\d,.]*", "#", text)


def what_changed(week: LoadedWeek, household_id: str) -> dict:
    """This week's score against the previous weekly run's, and the records shared since."""
    now, then = week.rows.get(household_id), _previous_row(week, household_id)
    reasons_now = split_reasons(now["reasons"])
    reasons_then = [] if then is None else split_reasons(then["reasons"])
    kinds_now = {_reason_kind(text) for text in reasons_now}
    kinds_then = {_reason_kind(text) for text in reasons_then}
    risk_then = None if then is None else then["risk"]
    since = week.previous_as_of or week.as_of - pd.Timedelta(days=7)
    return {
        "previous_as_of": since.date().isoformat(),
        "risk_then": risk_then,
        "risk_now": now["risk"],
        "band_then": None if then is None else then["band"],
        "band_now": now["band"],
        "risk_change": None if risk_then is None else now["risk"] - risk_then,
        "reasons_appeared": [
            text
            for text in reasons_now
            if then is not None and _reason_kind(text) not in kinds_then
        ],
        "reasons_faded": [text for text in reasons_then if _reason_kind(text) not in kinds_now],
        "new_records": week.new_records(household_id),
    }


def household_detail(
    week: LoadedWeek, *, household_id: str, workers: list[str], horizon_weeks: int
) -> dict:
    row = week.rows.get(household_id)
    return {
        "household_id": household_id,
        "locality": row["locality"],
        "as_of": week.as_of_text,
        "horizon_weeks": horizon_weeks,
        "risk": row["risk"],
        "band": row["band"],
        "rank": row["rank"],
        "needs": split_needs(row["needs"]),
        "reasons": split_reasons(row["reasons"]),
        "model_version": str(row["model_version"]),
        "key_workers": workers,
        "what_changed": what_changed(week, household_id),
        "timeline": week.household_timeline(household_id),
    }


def household_summary(
    week: LoadedWeek, *, household_id: str, workers: list[str], with_changes: bool
) -> dict:
    row, then = week.rows.get(household_id), _previous_row(week, household_id)
    return {
        "household_id": household_id,
        "locality": row["locality"],
        "risk": row["risk"],
        "band": row["band"],
        "rank": row["rank"],
        "needs": split_needs(row["needs"]),
        "reasons": split_reasons(row["reasons"]),
        "key_workers": workers,
        "risk_change": None if then is None else row["risk"] - then["risk"],
        "new_records": len(week.new_records(household_id)) if with_changes else None,
    }


def _summaries(
    week: LoadedWeek, db: ServiceDB, household_ids: list[str], *, with_changes: bool
) -> list[dict]:
    return [
        household_summary(
            week,
            household_id=household_id,
            workers=key_workers(week, db, household_id),
            with_changes=with_changes,
        )
        for household_id in household_ids
    ]


def _default_purpose(principal: access.Principal) -> str:
    return "casework" if principal.role == access.KEY_WORKER else "allocation review"


# --- the three reads, shared by the API and the pages ------------------------------------------


async def read_household(
    *,
    principal: access.Principal,
    household_id: str,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
    purpose: str,
) -> list[str]:
    """Check the caller may see the household and put the read on record; returns its key
    workers (looked up now, not cached: a decision may have changed them)."""
    async with audited_async(
        audit,
        principal,
        action="read_household",
        target=f"household:{household_id}",
        purpose=purpose or _default_purpose(principal),
    ) as detail:
        detail["as_of"] = week.as_of_text
        scope = household_scope(week, db, household_id)
        access.check_household(principal, household_id=household_id, scope=scope)
    return sorted(scope.key_workers)


def household_json(
    week: LoadedWeek, *, household_id: str, workers: list[str], horizon_weeks: int
) -> bytes:
    """The API's HouseholdOut as JSON bytes: the week's part made once, key workers per call."""
    start = week.bodies.get(
        ("json", household_id, horizon_weeks),
        lambda: _json_start(week, household_id=household_id, horizon_weeks=horizon_weeks),
    )
    return start + json.dumps(workers).encode() + b"}"


def _json_start(week: LoadedWeek, *, household_id: str, horizon_weeks: int) -> bytes:
    detail = household_detail(
        week, household_id=household_id, workers=[], horizon_weeks=horizon_weeks
    )
    del detail["key_workers"]
    text = json.dumps(detail, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text[:-1].encode() + b',"key_workers":'


def household_record_html(
    week: LoadedWeek, *, household_id: str, workers: list[str], horizon_weeks: int
) -> Markup:
    """The household page's record section, made once per week and set of key workers."""
    return week.bodies.get(
        ("html", household_id, horizon_weeks, tuple(workers)),
        lambda: Markup(
            TEMPLATES.get_template("_household.html").render(
                household=household_detail(
                    week, household_id=household_id, workers=workers, horizon_weeks=horizon_weeks
                )
            )
        ),
    )


def read_caseload(
    *, principal: access.Principal, week: LoadedWeek, db: ServiceDB, audit: AuditWriter
) -> dict:
    target = f"caseload:{principal.worker_id or '-'}"
    with audited(
        audit, principal, action="read_caseload", target=target, purpose="casework"
    ) as detail:
        worker_id = access.check_caseload(principal)
        household_ids = caseload_ids(week, db, worker_id)
        detail |= {"as_of": week.as_of_text, "households": household_ids}
    households = _summaries(week, db, household_ids, with_changes=True)
    households.sort(key=lambda summary: (-summary["risk"], summary["household_id"]))
    return {"worker_id": worker_id, "as_of": week.as_of_text, "households": households}


def read_locality(
    *,
    principal: access.Principal,
    locality: str,
    top: int,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
) -> dict:
    with audited(
        audit,
        principal,
        action="read_locality",
        target=f"locality:{locality}",
        purpose="allocation review",
    ) as detail:
        access.check_locality(principal, locality)
        in_locality = week.by_locality.get(locality, ())
        chosen = list(in_locality[:top])
        detail |= {"as_of": week.as_of_text, "households": len(chosen), "top": top}
    households = _summaries(week, db, chosen, with_changes=False)
    return {
        "locality": locality,
        "as_of": week.as_of_text,
        "households_in_locality": len(in_locality),
        "households": households,
    }
