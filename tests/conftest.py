"""Fixtures shared by every package's tests: a fresh REBALANCE_HOME with MLflow's schema ready,
and a small synthetic city with models fitted on it once per session (tests/models and
tests/experiments both use them: the experiments' fixtures add the bias audit to the same fit)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import date
from importlib.metadata import version as mlflow_version
from pathlib import Path

import pytest

from experiments import tracking
from experiments.city import generate_city
from models import TrainSettings, fit_and_evaluate

CITY_END = date(2025, 6, 30)
CITY_HOUSEHOLDS = 4000
# Fewer folds and a single thread keep the suite fast; everything else is the production default.
QUICK = TrainSettings(folds=3, history_dates=4, num_threads=1)
# A deliberately poor model (one stump) for refusal tests.
WEAK = TrainSettings(folds=1, history_dates=2, n_estimators=1, num_leaves=2, num_threads=1)


@pytest.fixture(scope="session")
def quick() -> TrainSettings:
    return QUICK


@pytest.fixture(scope="session")
def weak() -> TrainSettings:
    return WEAK


@pytest.fixture(scope="session")
def city_end() -> date:
    return CITY_END


@pytest.fixture(scope="session")
def city():
    return generate_city(households=CITY_HOUSEHOLDS, seed=0, end=CITY_END)


@pytest.fixture(scope="session")
def small_city(city) -> dict:
    """The contract tables only (no truth), as the store would return them."""
    return {name: table for name, table in city.tables().items() if name != "truth"}


@pytest.fixture(scope="session")
def fitted_outcome(city, small_city):
    """The quick model fitted once on the small city (models.fit_and_evaluate)."""
    return fit_and_evaluate(tables=small_city, as_of=CITY_END, settings=QUICK, truth=city.truth)


@pytest.fixture(scope="session")
def weak_fitted_outcome(small_city):
    return fit_and_evaluate(tables=small_city, as_of=CITY_END, settings=WEAK)


# Fixtures that take over 5 s to build on the development machine (pytest --durations): a test
# that needs one is slow however quick its own body, so it is marked slow with the tests that
# take over 5 s themselves. `make test-fast` leaves them all out.
SLOW_FIXTURES = frozenset(
    {
        "world",  # tests/api: a city ingested, a model fitted, two weeks scored, a proposal
        "model_world",
        "demo_home",  # tests/api/test_end_to_end.py: `rebalance demo`
        "histories",  # tests/experiments/test_simulation.py: simulated city histories
        "fitted_outcome",  # the quick model fitted on the small city
        "weak_fitted_outcome",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def _mlflow_template_db(request, tmp_path_factory) -> Path:
    # Creating MLflow's schema runs every migration (tens of seconds on a busy machine), so an
    # empty initialised database is kept in pytest's cache, per MLflow version, and copied.
    cache = getattr(request.config, "cache", None)
    folder = (
        cache.mkdir(f"mlflow-schema-{mlflow_version('mlflow')}")
        if cache is not None
        else tmp_path_factory.mktemp("mlflow-schema")
    )
    database = folder / "mlflow.db"
    if not database.exists():
        building = folder / f"building-{os.getpid()}.db"
        tracking.initialise(tracking_uri=f"sqlite:///{building}")
        building.replace(database)
    return database


def new_home(home: Path, *, mlflow_schema: Path) -> Path:
    """Create a working store whose MLflow database is a copy of the initialised schema."""
    home.mkdir(parents=True)
    with (
        closing(sqlite3.connect(mlflow_schema)) as source,
        closing(sqlite3.connect(home / "mlflow.db")) as copy,
    ):
        source.backup(copy)
    return home


@pytest.fixture
def rebalance_home(tmp_path, _mlflow_template_db, monkeypatch) -> Path:
    """An empty working store whose MLflow database already has its schema."""
    home = new_home(tmp_path / "home", mlflow_schema=_mlflow_template_db)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REBALANCE_HOME", str(home))
    return home
