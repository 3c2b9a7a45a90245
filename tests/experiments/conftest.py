"""Shared fixtures: a small synthetic city, audited training outcomes fitted on it once.

As tests/models/conftest.py, but the outcomes carry the holdout's bias audit
(experiments.training.fit_and_audit), as a training run logs them. Each test logs them into its own
temporary REBALANCE_HOME.
"""

from __future__ import annotations

from datetime import date

import pytest

from experiments.city import generate_city
from experiments.training import fit_and_audit
from models import TrainSettings

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
def trained_outcome(city, small_city):
    return fit_and_audit(tables=small_city, as_of=CITY_END, settings=QUICK, truth=city.truth)


@pytest.fixture(scope="session")
def weak_outcome(small_city):
    return fit_and_audit(tables=small_city, as_of=CITY_END, settings=WEAK)
