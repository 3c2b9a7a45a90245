"""Administration: the users and the audit log (administrators only; no household records)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api import access, users_db
from api.audit import AUDIT_ACTIONS, audited, read_entries, verify_chain
from api.deps import DB, ApiCaller, Audit, PageSession
from api.routes import render
from api.schemas import AuditOut, AuditVerifyOut, Message, UserOut

router = APIRouter()

REFUSALS = {
    401: {"model": Message, "description": "Not signed in."},
    403: {"model": Message, "description": "Only administrators."},
}
Limit = Annotated[int, Query(ge=1, le=1000, description="Entries per page.")]
Before = Annotated[int | None, Query(ge=1, description="Entries older than this id.")]
Filter = Annotated[str | None, Query(min_length=1, max_length=100)]
ActionFilter = Annotated[str | None, Query(pattern=f"^({'|'.join(AUDIT_ACTIONS)})$")]


async def audit_query(
    limit: Limit = 100,
    before: Before = None,
    actor: Filter = None,
    action: ActionFilter = None,
    target: Filter = None,
) -> dict:
    """The audit log's filters and page, as the API and the page both take them."""
    return {"limit": limit, "before": before, "actor": actor, "action": action, "target": target}


AuditQuery = Annotated[dict, Depends(audit_query)]


def _users(db) -> list[dict]:
    return [user | {"active": bool(user["active"])} for user in users_db.list_users(db.read())]


def _audit_page(db, *, limit: int, before: int | None, actor, action, target) -> dict:
    entries = read_entries(
        db.read(), limit=limit, before_id=before, actor=actor, action=action, target=target
    )
    next_before = entries[-1]["entry_id"] if len(entries) == limit else None
    return {"entries": entries, "next_before": next_before}


# --- API ----------------------------------------------------------------------------------------


@router.get(
    "/api/users",
    response_model=list[UserOut],
    responses=REFUSALS,
    tags=["administration"],
    summary="Every user and their role (no password hashes)",
)
def get_users(principal: ApiCaller, db: DB, audit: Audit) -> list[dict]:
    with audited(audit, principal, action="read_users", target="users", purpose="administration"):
        access.check_admin(principal)
    return _users(db)


@router.get(
    "/api/audit",
    response_model=AuditOut,
    responses=REFUSALS,
    tags=["administration"],
    summary="The audit log, newest first, optionally filtered",
)
def get_audit(principal: ApiCaller, db: DB, audit: Audit, query: AuditQuery) -> dict:
    with audited(audit, principal, action="read_audit", target="audit", purpose="audit review"):
        access.check_admin(principal)
    return _audit_page(db, **query)


@router.get(
    "/api/audit/verify",
    response_model=AuditVerifyOut,
    responses=REFUSALS,
    tags=["administration"],
    summary="Recompute the audit log's hash chain: has any entry been altered?",
)
def get_audit_verification(principal: ApiCaller, db: DB, audit: Audit) -> dict:
    with audited(audit, principal, action="read_audit", target="audit", purpose="audit check"):
        access.check_admin(principal)
    return verify_chain(db.read())


# --- pages --------------------------------------------------------------------------------------


@router.get("/admin/users", include_in_schema=False)
def users_page(request: Request, session: PageSession, db: DB, audit: Audit):
    with audited(
        audit, session.principal, action="read_users", target="users", purpose="administration"
    ):
        access.check_admin(session.principal)
    return render(request, "admin_users.html", session=session, users=_users(db))


@router.get("/admin/audit", include_in_schema=False)
def audit_page(
    request: Request,
    session: PageSession,
    db: DB,
    audit: Audit,
    query: AuditQuery,
    check: bool = False,
):
    with audited(
        audit, session.principal, action="read_audit", target="audit", purpose="audit review"
    ):
        access.check_admin(session.principal)
    page = _audit_page(db, **query)
    return render(
        request,
        "admin_audit.html",
        session=session,
        page=page,
        chain=verify_chain(db.read()) if check else None,
        filters={name: query[name] or "" for name in ("actor", "action", "target")},
        actions=AUDIT_ACTIONS,
        limit=query["limit"],
    )
