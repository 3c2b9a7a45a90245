"""What the proposal endpoints do: a manager reviews the week's allocation row by row and decides.

- This week's proposal for a locality is the weekly run's proposal.csv rows for it, stored in
  service.db the first time the manager opens it; `POST /api/proposals` re-runs the optimiser for
  the locality now (with optional locks), counting the cases already opened by decisions.
- A decision is accept, override (to another worker), waitlist or reject, each with a reason
  (accept's defaults to "as proposed"). Decisions that open a case re-check the hard rules:
  the worker is active, works in the household's locality (or a configured neighbour), has
  domestic-abuse skill when the household needs it, and has the points free; the capacity check
  runs inside the same transaction that opens the case, so two managers cannot both fill the
  last points.
- Each row carries a version. A decision names the version it was made on; if the row was
  decided meanwhile the second manager gets 409 and nothing changes.
- Every decision is written with the risk and reasons that were on screen (an override record,
  experiments.transparency.override_record) and to the audit log, in one transaction.
"""

from __future__ import annotations

import json
import re
import secrets

import pandas as pd

from allocation.rules import room_refusal, worker_refusal
from api import access, service_db
from api.audit import AuditEntry, AuditWriter, append_entry, audited, record_failure
from api.deps import LoadedWeek, risk_band
from api.published import split_needs, split_reasons
from api.schemas import DecisionIn
from api.service_db import ConflictError, NewCase, NewDecision, NewProposal, ServiceDB
from api.settings import Settings

WEEKLY_RUN, MANAGER_RUN = "weekly run", "manager re-run"
ACCEPTED_AS_PROPOSED = "accepted as proposed"


class RuleBroken(Exception):
    """A decision would break a hard allocation rule: 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- building and storing proposals -------------------------------------------------------------


def _proposal_id(*, as_of: str, locality: str) -> str:
    place = re.sub(r"[^A-Za-z0-9]", "", locality)[:20] or "locality"
    return f"{as_of}-{place.lower()}-{secrets.token_hex(4)}"


def _row_records(rows: pd.DataFrame, *, week: LoadedWeek) -> list[dict]:
    """Proposal rows as stored: the optimiser's columns plus the reasons that were shown."""
    reasons = week.scores["reasons"].reindex(rows["household_id"]).to_numpy()
    return [
        {
            "household_id": str(row["household_id"]),
            "position": position,
            "locality": str(row["locality"]),
            "risk": float(row["risk"]),
            "needs": row["needs"] if isinstance(row["needs"], str) else "",
            "reasons": reason if isinstance(reason, str) else "",
            "points": int(row["points"]),
            "status": str(row["status"]),
            "worker_id": row["worker_id"] if isinstance(row["worker_id"], str) else None,
            "value": float(row["value"]) if pd.notna(row["value"]) else 0.0,
            "explanation": str(row["explanation"]) if pd.notna(row["explanation"]) else "",
        }
        for position, ((_, row), reason) in enumerate(zip(rows.iterrows(), reasons, strict=True))
    ]


def _records(frame: pd.DataFrame | None) -> list[dict]:
    if frame is None:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def new_proposal(
    *,
    week: LoadedWeek,
    locality: str,
    rows: pd.DataFrame,
    workers: pd.DataFrame | None,
    summary: dict,
    locks: list[dict],
    source: str,
    created_by: str,
) -> NewProposal:
    """A proposal ready to store: its header, the per-worker summary and its rows."""
    versions = week.scores["model_version"].dropna().unique()
    return NewProposal(
        proposal_id=_proposal_id(as_of=week.as_of_text, locality=locality),
        locality=locality,
        as_of=week.as_of_text,
        source=source,
        created_by=created_by,
        model_version=str(versions[0]) if len(versions) else None,
        summary=summary,
        workers=_records(workers),
        locks=locks,
        rows=_row_records(rows, week=week),
    )


SUMMARY_FIELDS: tuple[str, ...] = ("status", "method", "gap", "solve_seconds", "ortools_version")


def locality_summary(summary: dict, *, locality: str) -> dict:
    """The weekly (city-wide) summary as it concerns one locality."""
    counts = summary.get("localities", {}).get(locality, {})
    messages = [text for text in summary.get("messages", []) if locality in text]
    return {name: summary[name] for name in SUMMARY_FIELDS if name in summary} | {
        "locality": locality,
        "candidates": counts.get("candidates", 0),
        "assigned": counts.get("assigned", 0),
        "waitlisted": counts.get("waitlisted", 0),
        "points_short": counts.get("points_short", 0),
        "messages": messages,
    }


def weekly_proposal(db: ServiceDB, *, week: LoadedWeek, locality: str) -> dict | None:
    """This week's proposal for the locality: the latest stored one, else the weekly run's."""
    stored = service_db.latest_proposal(db.read(), locality=locality, as_of=week.as_of_text)
    if stored is not None or week.proposal is None:
        return stored
    workers = week.proposal_workers
    if workers is not None and "locality" in workers.columns:
        workers = workers.loc[workers["locality"] == locality]
    proposal = new_proposal(
        week=week,
        locality=locality,
        rows=week.proposal.loc[week.proposal["locality"] == locality],
        workers=workers,
        summary=locality_summary(week.proposal_summary, locality=locality),
        locks=[],
        source=WEEKLY_RUN,
        created_by="weekly run",
    )
    with db.write() as connection:
        # Two managers opening the page at once must not store the weekly proposal twice.
        if service_db.latest_proposal(connection, locality=locality, as_of=week.as_of_text) is None:
            service_db.insert_proposal(connection, proposal)
    return service_db.latest_proposal(db.read(), locality=locality, as_of=week.as_of_text)


def cases_for_allocation(db: ServiceDB, *, week: LoadedWeek) -> pd.DataFrame:
    """Partners' cases opened by the as-of date, plus the cases decisions opened (as the weekly
    job counts them: api.pipeline.current_tables)."""
    partner = week.cases
    decided = service_db.pending_decided_cases(
        service_db.decided_case_frame(service_db.decided_case_rows(db.read())),
        partner_cases=partner,
    )
    decided = decided.loc[decided["worker_id"].isin(week.workers["worker_id"])]
    return pd.concat([partner, decided], ignore_index=True)


def generate_proposal(
    settings: Settings,
    db: ServiceDB,
    *,
    week: LoadedWeek,
    locality: str,
    locks: list[dict],
    created_by: str,
) -> str:
    """Run the optimiser for one locality now and store the result."""
    from allocation import AllocationInputError, propose_allocation
    from api.pipeline import allocation_settings

    lock_frame = pd.DataFrame(locks, columns=["household_id", "worker_id", "kind"], dtype="str")
    try:
        proposal = propose_allocation(
            scores=week.scores.reset_index(drop=True),
            workers=week.workers.reset_index(drop=True),
            cases=cases_for_allocation(db, week=week),
            locks=lock_frame if locks else None,
            locality=locality,
            settings=allocation_settings(settings),
            as_of=week.as_of,
        )
    except AllocationInputError as error:
        raise RuleBroken("locks", str(error)) from None
    stored = new_proposal(
        week=week,
        locality=locality,
        rows=proposal.rows,
        workers=proposal.workers,
        summary=dict(proposal.summary) | {"lock_report": _records(proposal.lock_report)},
        locks=locks,
        source=MANAGER_RUN,
        created_by=created_by,
    )
    with db.write() as connection:
        service_db.insert_proposal(connection, stored)
    return stored.proposal_id


# --- reading a proposal -------------------------------------------------------------------------


def _row_out(row: dict) -> dict:
    return row | {
        "band": risk_band(row["risk"]),
        "needs": split_needs(row["needs"]),
        "reasons": split_reasons(row["reasons"]),
    }


def _pending_points(db: ServiceDB, week: LoadedWeek, worker_id: str, connection=None) -> int:
    """Points of the worker's open cases opened by decisions and not yet in partners' records."""
    cases = service_db.decided_cases_of_worker(connection or db.read(), worker_id=worker_id)
    total = 0
    for case in cases:
        if week.decided_case_open(household_id=case["household_id"], opened_at=case["opened_at"]):
            total += int(case["complexity_points"])
    return total


def _still_proposed(rows: list[dict], *, worker_id: str, leave_out: str | None) -> int:
    """Points of the undecided rows a proposal gives the worker (leaving one household out)."""
    return sum(
        int(row["points"])
        for row in rows
        if row["decision"] is None
        and row["status"] == "assigned"
        and row["worker_id"] == worker_id
        and row["household_id"] != leave_out
    )


def worker_room(
    db: ServiceDB,
    week: LoadedWeek,
    *,
    worker_id: str,
    rows: list[dict],
    connection=None,
    leave_out: str | None = None,
) -> dict:
    """One worker now, in points: partners' open cases, cases opened by decisions, what the
    proposal's undecided rows still give them, and what is left (may be negative)."""
    worker = week.workers.loc[worker_id]
    total = int(worker["capacity_points"])
    existing = int(week.open_points.get(worker_id, 0))
    decided = _pending_points(db, week, worker_id, connection)
    proposed = _still_proposed(rows, worker_id=worker_id, leave_out=leave_out)
    return {
        "worker_id": worker_id,
        "skills": split_needs(worker["skills"]),
        "active": bool(worker["active"]),
        "capacity_points": total,
        "existing_points": existing,
        "decided_points": decided,
        "proposed_points": proposed,
        "free_points": total - existing - decided - proposed,
    }


def capacity_now(db: ServiceDB, *, week: LoadedWeek, locality: str, rows: list[dict]) -> list[dict]:
    """Each worker of the locality now (worker_room), in worker order."""
    team = week.workers.loc[week.workers["locality"] == locality].sort_values("worker_id")
    return [worker_room(db, week, worker_id=worker_id, rows=rows) for worker_id in team.index]


def proposal_document(db: ServiceDB, *, proposal_id: str) -> dict:
    header = service_db.proposal_by_id(db.read(), proposal_id)
    rows = [_row_out(row) for row in service_db.proposal_rows(db.read(), proposal_id)]
    return header | {"rows": rows}


def read_proposal(
    *, principal: access.Principal, proposal_id: str, db: ServiceDB, audit: AuditWriter
) -> dict:
    header = service_db.proposal_by_id(db.read(), proposal_id)
    with audited(
        audit,
        principal,
        action="read_proposal",
        target=f"proposal:{proposal_id}",
        purpose="allocation review",
    ) as detail:
        access.check_proposal(
            principal,
            proposal_id=proposal_id,
            locality=None if header is None else header["locality"],
        )
        detail["as_of"] = header["as_of"]
    return proposal_document(db, proposal_id=proposal_id)


# --- deciding -----------------------------------------------------------------------------------


def worker_problem(
    week: LoadedWeek, settings: Settings, *, row: dict, worker_id: str
) -> str | None:
    """Why this worker may not take this household (None: the hard rules allow it)."""
    if worker_id not in week.workers.index:
        return f"there is no key worker {worker_id}"
    return worker_refusal(
        worker_id=worker_id,
        worker=week.workers.loc[worker_id],
        household_locality=row["locality"],
        needs=row["needs"],
        neighbours=settings.allocation.get("neighbours", {}),
    )


def _chosen_worker(row: dict, decision: DecisionIn) -> str | None:
    """The worker the decision gives the household (None: no case is opened)."""
    if decision.action == "override":
        if not decision.worker_id:
            raise RuleBroken("worker_id", "an override needs worker_id: the worker to allocate to")
        if decision.worker_id == row["worker_id"]:
            raise RuleBroken(
                "worker_id", f"{decision.worker_id} is already the proposed worker: accept instead"
            )
        return decision.worker_id
    if decision.worker_id:
        raise RuleBroken("worker_id", f"worker_id is only for an override, not {decision.action}")
    if decision.action == "accept" and row["status"] == "assigned":
        return row["worker_id"]
    return None


def _override_kind(row: dict, chosen: str | None) -> str | None:
    """The override record's decision, or None when nothing differs from a waitlisting."""
    proposed = row["worker_id"] if row["status"] == "assigned" else None
    if proposed is None:
        return None if chosen is None else "added"
    if chosen is None:
        return "not_allocated"
    return "accepted" if chosen == proposed else "changed_worker"


def _override_record(
    row: dict, *, chosen: str | None, reason: str, manager: str, model_version
) -> dict | None:
    from experiments.overrides import override_record

    kind = _override_kind(row, chosen)
    if kind is None:
        return None
    return override_record(
        household_id=row["household_id"],
        shown_risk=row["risk"],
        shown_reasons=split_reasons(row["reasons"]),
        proposed_worker=row["worker_id"] if row["status"] == "assigned" else None,
        chosen_worker=chosen,
        decision=kind,
        reason=reason,
        manager=manager,
        locality=row["locality"],
        model_version=model_version,
        shown_band=risk_band(row["risk"]),
    )


def _check_capacity(
    connection, db: ServiceDB, week: LoadedWeek, *, proposal_id: str, row: dict, worker_id: str
) -> None:
    """Rule 4 (allocation.rules): the case fits in what the worker has free now, counting the
    households this proposal still proposes to the worker (undecided rows other than this one)."""
    rows = service_db.proposal_rows(connection, proposal_id)
    room = worker_room(
        db,
        week,
        worker_id=worker_id,
        rows=rows,
        connection=connection,
        leave_out=row["household_id"],
    )
    refusal = room_refusal(
        worker_id=worker_id,
        capacity_points=room["capacity_points"],
        free_points=room["free_points"],
        points=int(row["points"]),
    )
    if refusal:
        raise RuleBroken("worker_id", refusal)


def _reason(decision: DecisionIn) -> str:
    reason = decision.reason.strip()
    if not reason and decision.action != "accept":
        raise RuleBroken("reason", f"a reason is required to {decision.action}")
    return reason or ACCEPTED_AS_PROPOSED


def apply_decision(
    *,
    principal: access.Principal,
    proposal_id: str,
    decision: DecisionIn,
    settings: Settings,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
) -> dict:
    """Record one decision (see the module docstring); returns the updated row."""
    header = service_db.proposal_by_id(db.read(), proposal_id)
    target = f"household:{decision.household_id}"
    with audited(
        audit,
        principal,
        action="decide",
        target=target,
        purpose="allocation decision",
        record_allowed=False,
    ) as detail:
        detail["proposal_id"] = proposal_id
        access.check_proposal(
            principal,
            proposal_id=proposal_id,
            locality=None if header is None else header["locality"],
        )
        row = service_db.proposal_row(
            db.read(), proposal_id=proposal_id, household_id=decision.household_id
        )
        if row is None:
            raise access.not_found("household in proposal", decision.household_id)
    try:
        return _decide_checked(
            principal=principal,
            header=header,
            row=row,
            decision=decision,
            settings=settings,
            week=week,
            db=db,
        )
    except (RuleBroken, ConflictError) as failure:
        record_failure(
            audit,
            principal,
            action="decide",
            target=target,
            purpose="allocation decision",
            detail={
                "proposal_id": proposal_id,
                "action": decision.action,
                "not_done_because": str(failure),
            },
        )
        raise


def _new_decision(*, principal, header: dict, row: dict, action: str, chosen, reason: str):
    proposed = row["worker_id"] if row["status"] == "assigned" else None
    return NewDecision(
        proposal_id=header["proposal_id"],
        household_id=row["household_id"],
        locality=header["locality"],
        action=action,
        proposed_worker=proposed,
        chosen_worker=chosen,
        reason=reason,
        decided_by=principal.username,
        shown_risk=row["risk"],
        shown_reasons=split_reasons(row["reasons"]),
        override_record=_override_record(
            row,
            chosen=chosen,
            reason="" if reason == ACCEPTED_AS_PROPOSED else reason,
            manager=principal.username,
            model_version=header["model_version"],
        ),
    )


def _check_opening(week: LoadedWeek, settings: Settings, *, row: dict, worker_id: str) -> None:
    problem = worker_problem(week, settings, row=row, worker_id=worker_id)
    if problem:
        raise RuleBroken("worker_id", problem)
    scored = week.rows.get(row["household_id"]) or {}
    open_worker = scored.get("open_case_worker")
    if open_worker:
        raise ConflictError(
            f"household {row['household_id']} already has an open case with {open_worker}"
        )


def _decide_checked(*, principal, header, row, decision, settings, week, db) -> dict:
    reason = _reason(decision)
    chosen = _chosen_worker(row, decision)
    if chosen is not None:
        _check_opening(week, settings, row=row, worker_id=chosen)
    stored = _new_decision(
        principal=principal,
        header=header,
        row=row,
        action=decision.action,
        chosen=chosen,
        reason=reason,
    )
    case = None
    if chosen is not None:
        case = NewCase(
            household_id=row["household_id"],
            worker_id=chosen,
            opened_at=header["as_of"],
            complexity_points=int(row["points"]),
        )
    with db.write() as connection:
        if case is not None:
            _check_capacity(
                connection,
                db,
                week,
                proposal_id=header["proposal_id"],
                row=row,
                worker_id=chosen,
            )
        updated = service_db.decide_row(
            connection, decision=stored, version=decision.version, case=case
        )
        append_entry(connection, _decision_entry(principal, stored, version=decision.version))
    return _row_out(updated)


def _decision_entry(
    principal: access.Principal, stored: NewDecision, *, version: int
) -> AuditEntry:
    # The manager's reason is the "why"; the detail holds ids and what the screen showed.
    return AuditEntry(
        actor=principal.username,
        role=principal.role,
        action="decide",
        target=f"household:{stored.household_id}",
        purpose=f"allocation decision: {stored.reason}",
        detail={
            "proposal_id": stored.proposal_id,
            "action": stored.action,
            "proposed_worker": stored.proposed_worker,
            "chosen_worker": stored.chosen_worker,
            "shown_risk": stored.shown_risk,
            "shown_band": risk_band(stored.shown_risk),
            "shown_reasons": stored.shown_reasons,
            "overridden": bool((stored.override_record or {}).get("overridden", False)),
            "version": version,
        },
    )


def accept_remaining(
    *,
    principal: access.Principal,
    proposal_id: str,
    settings: Settings,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
) -> dict[str, list]:
    """Accept every undecided row as proposed; rows a rule or a conflict stops are reported."""
    read_proposal(principal=principal, proposal_id=proposal_id, db=db, audit=audit)
    accepted, not_done = [], []
    for row in service_db.proposal_rows(db.read(), proposal_id):
        if row["decision"] is not None:
            continue
        decision = DecisionIn(
            household_id=row["household_id"], action="accept", version=row["version"]
        )
        try:
            apply_decision(
                principal=principal,
                proposal_id=proposal_id,
                decision=decision,
                settings=settings,
                week=week,
                db=db,
                audit=audit,
            )
            accepted.append(row["household_id"])
        except (RuleBroken, ConflictError) as failure:
            not_done.append({"household_id": row["household_id"], "why": str(failure)})
    return {"accepted": accepted, "not_done": not_done}


def override_export(db: ServiceDB, *, since: str | None = None) -> pd.DataFrame:
    """Every decision with what was shown and what was proposed and chosen, for evaluation.

    One row per decision (oldest first): ids, week, locality, model version, shown risk, band
    and reasons, proposed and chosen worker, the override record's decision and whether it
    differs from the proposal, the manager's reason, who and when.
    """
    rows = service_db.decisions_for_export(db.read(), since=since)
    records = []
    for row in rows:
        override = json.loads(row["override_record"]) if row["override_record"] else {}
        records.append(
            {
                "decision_id": row["decision_id"],
                "proposal_id": row["proposal_id"],
                "as_of": row["as_of"],
                "household_id": row["household_id"],
                "locality": row["locality"],
                "model_version": row["model_version"],
                "action": row["action"],
                "decision": override.get("decision", "not proposed, not allocated"),
                "overridden": bool(override.get("overridden", False)),
                "shown_risk": row["shown_risk"],
                "shown_band": override.get("risk_band") or risk_band(row["shown_risk"]),
                "shown_reasons": " | ".join(json.loads(row["shown_reasons"])),
                "proposed_worker": row["proposed_worker"],
                "chosen_worker": row["chosen_worker"],
                "reason": row["reason"],
                "decided_by": row["decided_by"],
                "decided_at": row["decided_at"],
            }
        )
    return pd.DataFrame(records, columns=OVERRIDE_EXPORT_COLUMNS)


OVERRIDE_EXPORT_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "proposal_id",
    "as_of",
    "household_id",
    "locality",
    "model_version",
    "action",
    "decision",
    "overridden",
    "shown_risk",
    "shown_band",
    "shown_reasons",
    "proposed_worker",
    "chosen_worker",
    "reason",
    "decided_by",
    "decided_at",
)


def override_rates(decisions: list[dict]) -> list[dict]:
    """How often decisions differed from the proposal, overall, by risk band and by manager."""
    from experiments.overrides import summarise_overrides

    records = [json.loads(row["override_record"]) for row in decisions if row["override_record"]]
    if not records:
        return []
    rates = summarise_overrides(pd.DataFrame(records))
    rates = rates.loc[rates["dimension"] != "locality"]
    return rates.astype(object).where(rates.notna(), None).to_dict("records")
