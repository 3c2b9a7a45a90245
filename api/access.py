"""Who sees what: every access rule of the service, enforced server-side, here and only here.

- key_worker: the households on their own caseload (an open case with them, or one a manager
  allocated to them); nothing else.
- locality_manager: everything in their locality: scores, reasons, proposals, decisions.
- data_scientist: model pages, metrics, fairness audit; no household-level records.
- admin: users and the audit log; no household-level records.

Refusals. 403 means "your role may never do this", or names something whose existence is
public (a locality); it depends only on the role and the request, never on whether a household
exists. 404 means "nothing here for you": an unknown household id and a household outside the
caller's scope get the same 404 with the same words, so ids cannot be probed. The same holds for
proposal ids.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from api.database import ROLES

KEY_WORKER, LOCALITY_MANAGER, DATA_SCIENTIST, ADMIN = ROLES
ROLE_NAMES: dict[str, str] = {
    KEY_WORKER: "key worker",
    LOCALITY_MANAGER: "locality manager",
    DATA_SCIENTIST: "data scientist",
    ADMIN: "administrator",
}
# The first page each role lands on, and the pages its navigation offers.
HOME_PAGES: dict[str, str] = {
    KEY_WORKER: "/caseload",
    LOCALITY_MANAGER: "/proposal",
    DATA_SCIENTIST: "/models",
    ADMIN: "/admin/users",
}
NAVIGATION: dict[str, tuple[tuple[str, str], ...]] = {
    KEY_WORKER: (("My caseload", "/caseload"),),
    LOCALITY_MANAGER: (
        ("This week's proposal", "/proposal"),
        ("Households in my locality", "/locality"),
        ("Decisions", "/decisions"),
        ("Programme", "/programme"),
    ),
    DATA_SCIENTIST: (("Models", "/models"), ("Programme", "/programme")),
    ADMIN: (("Users", "/admin/users"), ("Audit log", "/admin/audit")),
}


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the service sees them."""

    username: str
    role: str
    worker_id: str | None = None
    locality: str | None = None

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]


@dataclass(frozen=True)
class HouseholdScope:
    """What access decisions need to know about a household: its locality and key workers."""

    household_id: str
    locality: str
    key_workers: frozenset[str]


class AccessRefused(Exception):
    """The caller may not see or do this; `status_code` is 403 or 404 (see module docstring)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def not_found(what: str, identifier: str) -> AccessRefused:
    return AccessRefused(404, f"No {what} {identifier!r} is open to you.")


def require_role(principal: Principal, roles: Collection[str], *, doing: str) -> None:
    """403 unless the caller's role is one of `roles`."""
    if principal.role not in roles:
        raise AccessRefused(403, f"A {principal.role_name} cannot {doing}.")


def check_household(
    principal: Principal, *, household_id: str, scope: HouseholdScope | None
) -> None:
    """Refuse unless the caller may see this household (scope None: no such household)."""
    require_role(principal, (KEY_WORKER, LOCALITY_MANAGER), doing="see household records")
    if scope is None or not household_in_scope(principal, scope):
        raise not_found("household", household_id)


def household_in_scope(principal: Principal, scope: HouseholdScope) -> bool:
    if principal.role == KEY_WORKER:
        return principal.worker_id is not None and principal.worker_id in scope.key_workers
    if principal.role == LOCALITY_MANAGER:
        return principal.locality is not None and principal.locality == scope.locality
    return False


def check_caseload(principal: Principal) -> str:
    """The worker id whose caseload the caller may list (only their own)."""
    require_role(principal, (KEY_WORKER,), doing="have a caseload")
    if not principal.worker_id:
        raise AccessRefused(403, "Your account is not linked to a key worker.")
    return principal.worker_id


def check_locality(principal: Principal, locality: str) -> None:
    """Managers see their own locality; locality names are public, so others get 403."""
    require_role(principal, (LOCALITY_MANAGER,), doing="see a locality's households")
    if principal.locality != locality:
        raise AccessRefused(403, f"You manage {principal.locality}; {locality} is not open to you.")


def check_proposal(principal: Principal, *, proposal_id: str, locality: str | None) -> None:
    """Managers see their own locality's proposals (locality None: no such proposal)."""
    require_role(principal, (LOCALITY_MANAGER,), doing="see allocation proposals")
    if locality is None or locality != principal.locality:
        raise not_found("proposal", proposal_id)


def check_proposal_create(principal: Principal) -> str:
    """The locality a manager may prepare a proposal for (their own)."""
    require_role(principal, (LOCALITY_MANAGER,), doing="prepare allocation proposals")
    if not principal.locality:
        raise AccessRefused(403, "Your account is not linked to a locality.")
    return principal.locality


def check_models(principal: Principal) -> None:
    require_role(principal, (DATA_SCIENTIST,), doing="see model pages")


def check_admin(principal: Principal) -> None:
    require_role(principal, (ADMIN,), doing="manage users or read the audit log")


def check_programme(principal: Principal) -> None:
    """The programme's results (no household-level data) are for managers and data scientists."""
    require_role(principal, (LOCALITY_MANAGER, DATA_SCIENTIST), doing="see the programme results")
