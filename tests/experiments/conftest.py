"""Shared fixtures: a small synthetic city, audited training outcomes fitted on it once.

As tests/models/conftest.py, but the outcomes carry the holdout's bias audit
(experiments.training.audited, on the same fit as tests/conftest.py makes), as a training run
logs them. Each test logs them into its own
temporary REBALANCE_HOME.
"""

from __future__ import annotations

import pytest

from experiments.training import audited


@pytest.fixture(scope="session")
def trained_outcome(fitted_outcome, small_city):
    return audited(fitted_outcome, tables=small_city)


@pytest.fixture(scope="session")
def weak_outcome(weak_fitted_outcome, small_city):
    return audited(weak_fitted_outcome, tables=small_city)
