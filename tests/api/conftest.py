"""A small world for the service tests, built once per session from the project's own functions.

A synthetic city (experiments.city) is ingested into a REBALANCE_HOME; a model is fitted with
quick settings and scores two consecutive weeks (so "what changed" has something to compare);
the optimiser writes the week's proposal. Three key workers join Hanley's team first, so that
its manager has choices to make: one with domestic-abuse skill, one with little capacity and
one who is not taking cases. Each test gets its own copy of that home (a fresh service.db
with the same users), so decisions in one test never leak into another.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from allocation import propose_allocation, write_proposal
from api import auth, database, demo_users, pipeline, users_db
from api.access import Principal
from api.app import create_app
from api.deps import SESSION_COOKIE
from api.settings import Settings, load_settings
from experiments.city import generate_city, write_city
from experiments.training import fit_and_audit
from features.ingest import ingest_folder
from features.store import Store
from models import ChampionModel, TrainSettings, score_households, write_scores

CITY_END = date(2025, 6, 30)
AS_OF = pd.Timestamp(CITY_END)
TEAM = "Hanley"
QUICK = TrainSettings(
    folds=1,
    history_dates=2,
    n_estimators=40,
    min_child_samples=50,
    isotonic_min_class_count=50,
    num_threads=1,
)
NEW_WORKERS = pd.DataFrame(
    {
        "worker_id": ["KW9001", "KW9002", "KW9003"],
        "locality": [TEAM, TEAM, TEAM],
        "skills": ["domestic_abuse;debt;housing;parenting", "debt;employment", "housing;youth"],
        "capacity_points": [100, 12, 100],
        "active": [True, True, False],
    }
)
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class World:
    """The built home (never changed by tests) and who can sign in to it."""

    home: Path
    as_of: pd.Timestamp
    locality: str
    users: dict[str, dict]
    outcome: object = field(repr=False)


def _city_extract(folder: Path) -> None:
    city = generate_city(households=1500, seed=11, end=CITY_END, history_weeks=80)
    workers = pd.concat([city.workers, NEW_WORKERS.astype(city.workers.dtypes)], ignore_index=True)
    write_city(city, folder)
    workers.to_csv(folder / "workers.csv", index=False)


def _weekly_run(home: Path, tables: dict, *, outcome) -> None:
    model = ChampionModel(
        estimator=outcome.model,
        name="household-escalation",
        version="1",
        run_id="tests",
        horizon_weeks=26,
    )
    for as_of in (AS_OF - pd.Timedelta(days=7), AS_OF):
        scores = score_households(tables=tables, as_of=as_of, model=model)
        write_scores(scores, home / "weeks" / str(as_of.date()) / "scores.csv")
    proposal = propose_allocation(scores=scores, workers=tables["workers"], cases=tables["cases"])
    write_proposal(proposal, out=home / "weeks" / str(AS_OF.date()) / "proposal.csv")


def _users(settings: Settings, tables: dict) -> dict[str, dict]:
    demo = demo_users.create_demo_users(
        settings, workers=tables["workers"], households=tables["households"]
    )
    users = {user["username"]: user for user in demo}
    db = database.open_service_db(settings.home)
    other_worker = tables["workers"].query("locality != @TEAM and active")["worker_id"].iloc[0]
    extra = {
        "manager2": {"role": "locality_manager", "locality": TEAM},
        "farmanager": {"role": "locality_manager", "locality": "Tunstall"},
        "farworker": {"role": "key_worker", "worker_id": other_worker},
        "kw9001": {"role": "key_worker", "worker_id": "KW9001"},
    }
    for username, links in extra.items():
        auth.add_user(db, username=username, password=PASSWORD, actor="tests", **links)
        users[username] = links | {"username": username, "password": PASSWORD}
    return users


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    home = tmp_path_factory.mktemp("world") / "home"
    _city_extract(home / "extract")
    ingest_folder(home / "extract", home=home)
    # The store holds the data now; the CSV files need not be copied for every test.
    shutil.rmtree(home / "extract")
    tables = Store(home).read_tables()
    outcome = fit_and_audit(tables=tables, as_of=CITY_END, settings=QUICK)
    _weekly_run(home, tables, outcome=outcome)
    settings = load_settings(home=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    # As the weekly job does: every household's record made once for the service.
    pipeline.publish_week(settings, as_of=AS_OF, processes=1)
    users = _users(settings, tables)
    assert users["manager"]["locality"] == TEAM, "the demo manager should run the largest team"
    return World(home=home, as_of=AS_OF, locality=TEAM, users=users, outcome=outcome)


class Service:
    """One test's service: its own copy of the world's home, the app and a test client."""

    def __init__(self, world: World, home: Path, *, throttle: auth.ThrottlePolicy | None = None):
        shutil.copytree(world.home, home)
        self.world = world
        self.home = home
        self.settings = load_settings(home=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
        self.app = create_app(self.settings, throttle=throttle)
        self.client = TestClient(self.app)
        self.db = self.app.state.service.db
        self._tokens: dict[str, str] = {}

    def principal(self, username: str) -> Principal:
        return auth.principal_of(users_db.user_by_name(self.db.read(), username))

    def headers(self, username: str) -> dict[str, str]:
        """A bearer header for the user (issued directly: signing in is tested elsewhere)."""
        if username not in self._tokens:
            token, _, _ = auth.issue_token(self.db, principal=self.principal(username), kind="api")
            self._tokens[username] = token
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def sign_in(self, username: str) -> str:
        """Give the test client a page session for the user; returns its CSRF secret."""
        token, csrf, _ = auth.issue_token(
            self.db, principal=self.principal(username), kind="session"
        )
        self.client.cookies.set(SESSION_COOKIE, token)
        return csrf

    def audit_rows(self, **where: str) -> list[dict]:
        conditions = " AND ".join(f"{column} = ?" for column in where) or "1"
        with closing(sqlite3.connect(database.service_db_path(self.home))) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                f"SELECT * FROM audit WHERE {conditions} ORDER BY entry_id", tuple(where.values())
            )
            return [dict(row) for row in rows]


@pytest.fixture
def service(world: World, tmp_path: Path) -> Service:
    return Service(world, tmp_path / "home")


@pytest.fixture
def make_service(world: World, tmp_path: Path):
    """Build a service with app options (e.g. a throttle policy) on a fresh copy of the home."""

    def make(**options) -> Service:
        return Service(world, tmp_path / f"home-{len(list(tmp_path.iterdir()))}", **options)

    return make


@pytest.fixture(scope="session")
def password() -> str:
    """The password of the users the tests add (the demo users have random ones)."""
    return PASSWORD


@pytest.fixture(scope="session")
def scores(world: World) -> pd.DataFrame:
    return pd.read_csv(world.home / "weeks" / str(AS_OF.date()) / "scores.csv", dtype=str)


@pytest.fixture(scope="session")
def ids(world, scores) -> dict[str, str]:
    """Household ids: one on farworker's caseload, one in Hanley with no case, one in Tunstall."""
    farworker = world.users["farworker"]["worker_id"]
    own = scores.loc[scores["open_case_worker"] == farworker, "household_id"].iloc[0]
    team = scores.loc[
        (scores["locality"] == world.locality) & scores["open_case_worker"].isna(), "household_id"
    ].iloc[0]
    far = scores.loc[
        (scores["locality"] == "Tunstall") & (scores["household_id"] != own), "household_id"
    ].iloc[0]
    return {"own": own, "team": team, "far": far, "unknown": "HDOESNOTEXIST"}


@pytest.fixture(scope="session")
def weekly_proposal(world: World) -> pd.DataFrame:
    return pd.read_csv(world.home / "weeks" / str(AS_OF.date()) / "proposal.csv", dtype=str)


@pytest.fixture(scope="session")
def model_world(world: World, tmp_path_factory) -> World:
    """The world with its model logged to MLflow and made champion, as `promote` would."""
    from experiments import tracking
    from experiments.registry import log_outcome

    home = tmp_path_factory.mktemp("models") / "home"
    shutil.copytree(world.home, home)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    logged = log_outcome(
        world.outcome,
        snapshot_id=Store(home).current_snapshot_id(),
        settings=QUICK,
        home=home,
        tracking_uri=uri,
    )
    tracking.set_alias(
        tracking_uri=uri,
        model_name=logged.model_name,
        alias=tracking.CHAMPION,
        version=logged.model_version,
    )
    return dataclasses.replace(world, home=home)


@pytest.fixture
def models_service(model_world: World, tmp_path: Path) -> Service:
    return Service(model_world, tmp_path / "home")
