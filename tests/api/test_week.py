"""The week in memory: a new weekly run is picked up while the old one goes on being served."""

from __future__ import annotations

import shutil
import time

import pandas as pd

from api.week import WeekCache


def test_a_new_weekly_run_replaces_the_old_without_a_gap(service, world):
    cache = WeekCache(service.settings, recheck_seconds=0)
    first = cache.current()
    assert first.as_of == world.as_of
    later = world.as_of + pd.Timedelta(days=7)
    shutil.copytree(first.week_dir, service.settings.week_dir(later))
    # The check notices the new run and loads it in the background; meanwhile: the old week.
    assert cache.current() is first
    deadline = time.monotonic() + 60
    while cache.current().as_of != later:
        assert time.monotonic() < deadline, "the new week was never loaded"
        time.sleep(0.05)
    assert cache.current().previous_as_of == world.as_of


def test_without_a_weekly_run_the_api_says_so(make_service):
    service = make_service()
    shutil.rmtree(service.settings.weeks_dir)
    response = service.client.get("/api/caseload", headers=service.headers("farworker"))
    assert response.status_code == 503
    assert "No weekly run" in response.json()["detail"]
