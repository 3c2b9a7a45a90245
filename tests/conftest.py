"""Fixtures shared by every package's tests: a fresh REBALANCE_HOME with MLflow's schema ready."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from importlib.metadata import version as mlflow_version
from pathlib import Path

import pytest

from experiments import tracking


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
