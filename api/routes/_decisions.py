"""Deciding a proposal's rows: accept, override (to another worker), waitlist or reject.

Decisions that open a case re-check the hard rules with allocation.rules (the same rules the
optimiser applies): the worker is active, works in the household's locality (or a configured
neighbour), has the skill safeguarding requires, and has room, counting what the proposal still
gives them; the room check runs inside the same transaction that opens the case, so two managers
cannot both fill the last points. Each row carries a version: a decision names the version it was
made on, and a row decided meanwhile gives 409 with nothing changed. Every decision is written
with the risk and reasons that were on screen (experiments.overrides.override_record) and to the
audit log, in one transaction.
"""

from __future__ import annotations

from allocation.rules import room_refusal, worker_refusal
from api import access, service_db
from api.audit import AuditEntry, AuditWriter, append_entry, audited, record_failure
from api.database import ConflictError, ServiceDB
from api.routes._proposals import RuleBroken, read_proposal, row_out, worker_room
from api.schemas import DecisionIn
from api.service_db import NewCase, NewDecision
from api.settings import Settings
from api.week import LoadedWeek
from experiments.overrides import override_record
from models.explain import risk_band, split_reasons

ACCEPTED_AS_PROPOSED = "accepted as proposed"


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
        safeguarding=settings.needs.safeguarding,
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
    return row_out(updated, week=week)


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
    read_proposal(principal=principal, proposal_id=proposal_id, db=db, audit=audit, week=week)
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
