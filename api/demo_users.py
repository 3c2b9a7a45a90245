"""The demo city's users: one of each role, for `rebalance demo` (docs/service.md)."""

from __future__ import annotations

import secrets

import pandas as pd

from api import auth, database, users_db
from api.access import ADMIN, DATA_SCIENTIST, KEY_WORKER, LOCALITY_MANAGER
from api.database import ServiceDB

DEMO_USERNAMES: dict[str, str] = {
    LOCALITY_MANAGER: "manager",
    KEY_WORKER: "keyworker",
    DATA_SCIENTIST: "scientist",
    ADMIN: "admin",
}


def demo_locality(*, workers: pd.DataFrame, households: pd.DataFrame) -> str:
    """The locality with the most active key workers (then the most households)."""
    active = workers.loc[workers["active"]]
    counts = pd.DataFrame(
        {
            "workers": active.groupby("locality").size(),
            "households": households.groupby("locality").size(),
        }
    ).fillna(0)
    counts = counts.loc[counts["workers"] > 0]
    if counts.empty:
        raise ValueError("no active key worker in any locality: cannot create demo users")
    ranked = counts.sort_values(["workers", "households"], ascending=False, kind="stable")
    return str(ranked.index[0])


def demo_worker(
    *, workers: pd.DataFrame, locality: str, proposal: pd.DataFrame | None = None
) -> str:
    """The demo key worker: in the locality, the one the latest proposal gives the most
    households (so signing in as them shows the manager's allocation), then the most capacity."""
    team = workers.loc[workers["active"] & (workers["locality"] == locality)]
    proposed = pd.Series(0, index=team["worker_id"].to_numpy(), dtype="int64")
    if proposal is not None and {"status", "worker_id"} <= set(proposal.columns):
        assigned = proposal.loc[proposal["status"] == "assigned", "worker_id"].value_counts()
        proposed = proposed.add(assigned.reindex(proposed.index).fillna(0).astype("int64"))
    ranked = team.assign(proposed=proposed.reindex(team["worker_id"]).to_numpy()).sort_values(
        ["proposed", "capacity_points", "worker_id"], ascending=[False, False, True]
    )
    return str(ranked["worker_id"].iloc[0])


def _latest_proposal(settings) -> pd.DataFrame | None:
    weeks = sorted(settings.weeks_dir.glob("*/proposal.csv")) if settings.weeks_dir.is_dir() else []
    if not weeks:
        return None
    return pd.read_csv(weeks[-1], dtype={"worker_id": "str", "status": "str"})


def create_demo_users(settings, *, workers: pd.DataFrame, households: pd.DataFrame) -> list[dict]:
    """One user of each role for the demo city, with fresh random passwords (printed once).

    The manager runs the locality with the most active key workers, and the key worker is on
    that manager's team (the one this week's proposal gives most households, when there is a
    proposal), so a manager's allocation reaches the demo key worker. Running it again resets
    the four demo users' passwords. Returns username, role, password, locality and worker_id.
    """
    locality = demo_locality(workers=workers, households=households)
    links = {
        LOCALITY_MANAGER: {"locality": locality},
        KEY_WORKER: {
            "worker_id": demo_worker(
                workers=workers, locality=locality, proposal=_latest_proposal(settings)
            )
        },
        DATA_SCIENTIST: {},
        ADMIN: {},
    }
    db = database.open_service_db(settings.home)
    created = []
    for role, username in DEMO_USERNAMES.items():
        password = secrets.token_urlsafe(12)
        if users_db.user_by_name(db.read(), username) is None:
            auth.add_user(
                db, username=username, role=role, password=password, actor="demo", **links[role]
            )
        else:
            _reset_demo_user(db, username=username, role=role, password=password, links=links[role])
        created.append(
            {"username": username, "role": role, "password": password}
            | {"locality": links[role].get("locality"), "worker_id": links[role].get("worker_id")}
        )
    return created


def _reset_demo_user(
    db: ServiceDB, *, username: str, role: str, password: str, links: dict[str, str]
) -> None:
    with db.write() as connection:
        users_db.update_user(
            connection,
            username=username,
            values={
                "role": role,
                "worker_id": links.get("worker_id"),
                "locality": links.get("locality"),
            },
        )
    auth.set_password(db, username=username, password=password, actor="demo")
