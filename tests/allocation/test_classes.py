"""The count model (allocation._classes) is an exact reformulation of the per-pair problem."""

from __future__ import annotations

import numpy as np
import pytest

from allocation import AllocationSettings, random_instance
from allocation._classes import (
    allocation_from_counts,
    count_model,
    counts_from_allocation,
    household_classes,
)
from allocation._packing import effective_points, greedy_fill
from allocation._prepare import prepare


def week(seed: int, **changes):
    instance = random_instance(seed=seed, households=4000, workers=24)
    settings = AllocationSettings(top_n=90, **changes)
    prepared = prepare(
        scores=instance.scores, workers=instance.workers, cases=instance.cases, settings=settings
    )
    return prepared.pairs, prepared.workers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classes_are_interchangeable_households(seed):
    pairs, _ = week(seed)
    classes = household_classes(pairs)
    assert len(classes) == len(pairs)
    np.testing.assert_allclose(classes["base"] * classes["ratio"], classes["value"], rtol=1e-8)
    # Within a class: same points, and worker by worker the same eligibility and ratio.
    for _, members in classes.groupby("klass"):
        offers = members.groupby("household_id").apply(
            lambda rows: tuple(sorted(zip(rows["worker_id"], rows["ratio"], strict=True)))
        )
        assert offers.nunique() == 1
        assert members["points"].nunique() == 1
    # Aggregation is real: far fewer classes than households.
    assert classes["klass"].nunique() < 0.8 * classes["household_id"].nunique()


def test_values_that_are_not_base_times_ratio_stay_exact():
    pairs, _ = week(3)
    rng = np.random.default_rng(0)
    noisy = pairs.assign(value=pairs["value"] * rng.uniform(0.9, 1.1, size=len(pairs)))
    classes = household_classes(noisy)
    np.testing.assert_allclose(classes["base"] * classes["ratio"], classes["value"], rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_round_trip_keeps_feasibility_and_never_loses_value(seed):
    pairs, workers = week(seed)
    classes = household_classes(pairs)
    capacity = effective_points(classes, workers)
    model = count_model(classes, capacity)
    rng = np.random.default_rng(seed)
    # A feasible allocation that is not value-ordered: greedy from a random start.
    start = rng.random(len(classes)) < 0.2
    chosen = greedy_fill(classes, capacity, start)
    n, y = counts_from_allocation(classes, model, chosen)
    rebuilt = allocation_from_counts(classes, model, n).to_numpy()
    again, _ = counts_from_allocation(classes, model, rebuilt)
    np.testing.assert_array_equal(n, again)
    values = classes["value"].to_numpy()
    assert values[rebuilt].sum() >= values[chosen].sum() - 1e-9
    # The count model's objective at (n, y) is the rearranged allocation's value.
    assert model.levels["coefficient"].to_numpy() @ y == pytest.approx(values[rebuilt].sum())
    # Same households per (class, worker), one worker each, within capacity.
    assert classes.loc[rebuilt, "household_id"].is_unique
    load = classes.loc[rebuilt].groupby("worker_id")["points"].sum()
    assert all(points <= capacity[worker_id] for worker_id, points in load.items())
    assert rebuilt.sum() == chosen.sum()


def test_count_bounds_respect_capacity_and_class_size():
    pairs, workers = week(5)
    classes = household_classes(pairs)
    capacity = effective_points(classes, workers)
    model = count_model(classes, capacity)
    sizes = classes.groupby("klass")["household_id"].nunique()
    counts = model.counts
    assert (counts["upper"] >= 1).all()
    assert (counts["upper"] <= counts["klass"].map(sizes)).all()
    assert (counts["upper"] * counts["points"] <= counts["worker_id"].map(capacity)).all()
    # One level row per distinct ratio of a class; coefficients are non-negative increments.
    levels = model.levels
    assert (levels["coefficient"] >= 0).all()
    per_class = counts.groupby("klass")["ratio"].nunique()
    assert levels.groupby("klass")["row"].nunique().to_dict() == per_class.to_dict()
    assert len(model.members) == levels["row"].nunique()
