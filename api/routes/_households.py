"""What the household endpoints show: one household's record, a caseload, a locality's list.

Every answer here is household-level data, so each read function checks api.access and writes
the audit log (allowed or refused) before it returns anything. Figures come from the weekly
run's scores (what managers were shown); "what changed" compares them with the previous run's.

One household's record is read far more often than it changes, so its JSON body and its page's
record section come from the published week (api.published), made once by the weekly job, or
are made on first read and kept on the LoadedWeek. What can change within a week, who holds the
household (a manager's decision opens a case), is looked up afresh on every request: it decides
who may see the household, and it is put into the record per request. Access is checked and
the read audited before any record is touched, so a record never reaches someone who may not
see the household, whoever asked for it first.
"""

from __future__ import annotations

from markupsafe import Markup

from api import access, service_db
from api.audit import AuditWriter, audited, audited_async
from api.database import ServiceDB
from api.published import household_record, split_evidence, split_needs
from api.week import LoadedWeek
from models.explain import split_reasons

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
        "needs_evidence": split_evidence(row.get("needs_evidence")),
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


def household_json(week: LoadedWeek, *, household_id: str, workers: list[str]) -> bytes:
    """The API's HouseholdOut as JSON bytes: the week's record with its key workers now."""
    return household_record(week, household_id).json(workers)


def household_record_html(week: LoadedWeek, *, household_id: str, workers: list[str]) -> Markup:
    """The household page's record section, with its key workers now."""
    return household_record(week, household_id).html(workers)


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
