"""The count model: households that no allocation can tell apart are solved as one class.

Two households are in one class when they have the same points and, worker by worker, the same
eligibility and the same multiplier `ratio` in `value(h, w) = base_h x ratio(w)` (with the default
objective, base is the risk times the lowest coverage factor and ratio the coverage factor
relative to it: same locality or neighbours, same needs, same locks). Within a class, the best way
to fill given per-worker counts is the rearrangement rule: the highest-base households go to the
highest-ratio workers. So the optimiser only decides how many households of each class each worker
takes (`n[class, worker]`), and the value of a class is the concave sum of its top households:

    value(class) = sum over ratio levels L_1 < L_2 < ... of
                   (L_l - L_(l-1)) x (sum of the k_l highest bases),
    k_l = sum of n[class, w] over workers with ratio >= L_l  (L_0 = 0)

written with one 0/1 variable per (level, position): `y[l, j] = 1` when the j-th highest base
is counted at level l. This is an exact reformulation (any count solution maps back to an
allocation of the same value and vice versa), but with far fewer interchangeable solutions, which
is what made the per-pair model slow to prove. Pure pandas/numpy: the solver module translates
the spec into OR-Tools models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RATIO_DECIMALS = 9  # ratios equal to 9 decimals are one level
# How far base x ratio may be from a pair's value (relative) for the pair to join a class; the
# solver widens its proven bound by this much.
RATIO_TOLERANCE = 1e-8


def household_classes(pairs: pd.DataFrame) -> pd.DataFrame:
    """pairs sorted by (rank, household_id, worker_id) with `klass` (int, in order of first
    appearance), `base` and `ratio` such that value == base x ratio for every pair."""
    ordered = pairs.sort_values(["rank", "household_id", "worker_id"], kind="stable")
    base = ordered.groupby("household_id")["value"].transform("min")
    ratio = (ordered["value"] / base.where(base > 0)).fillna(1.0).round(RATIO_DECIMALS)
    # A value that is not base x ratio (not the default objective) makes its household a class
    # of its own, with base 1 and its values as ratios: still exact, just not aggregated.
    inexact = pd.Series(
        ~np.isclose(base * ratio, ordered["value"], rtol=RATIO_TOLERANCE, atol=0.0),
        index=ordered.index,
    )
    alone = inexact.groupby(ordered["household_id"]).transform("any")
    ordered = ordered.assign(
        base=base.where(~alone, 1.0), ratio=ratio.where(~alone, ordered["value"])
    )
    tokens = ordered["worker_id"] + ":" + ordered["ratio"].map(repr)
    per_household = ordered.assign(token=tokens).groupby("household_id", sort=False)
    signature = (
        per_household["points"].first().astype("str") + "|" + per_household["token"].agg(",".join)
    )
    single = signature.index.isin(ordered.loc[alone, "household_id"])
    signature = signature.where(~single, signature + "|" + signature.index)
    codes, _ = pd.factorize(signature)
    return ordered.assign(
        klass=ordered["household_id"].map(pd.Series(codes, index=signature.index)).astype("int64")
    ).reset_index(drop=True)


@dataclass(frozen=True)
class CountModel:
    """The count model of one component, as data.

    counts: one row per (klass, worker_id) that can take at least one: points, ratio, upper.
    levels: one row per y variable: klass, level (ratio), position, coefficient (objective, in
        value units: (L_l - L_(l-1)) x base of the position-th household), row (its level row).
    members: level row -> positions in `counts` whose n add up to that level's k.
    capacity: worker_id -> free points (tightened).
    """

    counts: pd.DataFrame
    levels: pd.DataFrame
    members: list[np.ndarray]
    capacity: dict[str, int]


def _level_rows(
    counts: pd.DataFrame, ranked: pd.DataFrame
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Per class and ratio level: one y row per position that can be filled, and the counts rows
    whose n make up that level's k."""
    ratio, upper = counts["ratio"].to_numpy(), counts["upper"].to_numpy()
    bases = ranked["base"].to_numpy()
    class_rows = ranked.groupby("klass").indices
    columns: dict[str, list] = {name: [] for name in ("klass", "level", "position", "coefficient")}
    columns["row"], members = [], []
    for klass, rows in counts.groupby("klass").indices.items():
        mine, previous = bases[class_rows[klass]], 0.0
        for level in np.unique(ratio[rows]):
            inside = rows[ratio[rows] >= level]
            most = int(min(len(mine), upper[inside].sum()))
            columns["klass"].append(np.full(most, klass, dtype="int64"))
            columns["level"].append(np.full(most, level))
            columns["position"].append(np.arange(most, dtype="int64"))
            columns["coefficient"].append((level - previous) * mine[:most])
            columns["row"].append(np.full(most, len(members), dtype="int64"))
            members.append(inside)
            previous = level
    joined = {
        name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in columns.items()
    }
    return joined, members


def count_model(classes: pd.DataFrame, capacity: dict[str, int]) -> CountModel:
    """The spec of the count model from household_classes(pairs) and tightened capacity."""
    counts = (
        classes.groupby(["klass", "worker_id"], sort=True)
        .agg(points=("points", "first"), ratio=("ratio", "first"), size=("household_id", "size"))
        .reset_index()
    )
    counts = counts.assign(
        upper=np.minimum(counts["size"], counts["worker_id"].map(capacity) // counts["points"])
    )
    counts = counts.loc[counts["upper"] > 0, ["klass", "worker_id", "points", "ratio", "upper"]]
    counts = counts.reset_index(drop=True)
    columns, members = _level_rows(counts, ranked_households(classes))
    levels = pd.DataFrame(columns).astype({"klass": "int64", "position": "int64", "row": "int64"})
    return CountModel(counts, levels, members, dict(capacity))


def ranked_households(classes: pd.DataFrame) -> pd.DataFrame:
    """One row per household: klass, base, position in its class (highest base first, then rank,
    then household_id) - the order in which a class's households are placed."""
    households = classes.drop_duplicates("household_id")[["household_id", "klass", "base", "rank"]]
    households = households.sort_values(
        ["klass", "base", "rank", "household_id"], ascending=[True, False, True, True]
    )
    return households.assign(position=households.groupby("klass").cumcount()).reset_index(drop=True)


def allocation_from_counts(classes: pd.DataFrame, model: CountModel, n: np.ndarray) -> pd.Series:
    """Pairs chosen by the rearrangement rule from counts `n` (one per model.counts row): in each
    class, households in position order to the slots in (ratio desc, worker_id) order. Returns a
    boolean Series over classes.index."""
    slots = model.counts.assign(n=np.rint(n).astype("int64"))
    slots = slots.loc[slots["n"] > 0].sort_values(
        ["klass", "ratio", "worker_id"], ascending=[True, False, True]
    )
    slots = slots.loc[slots.index.repeat(slots["n"])]
    slots = slots.assign(position=slots.groupby("klass").cumcount())[
        ["klass", "position", "worker_id"]
    ]
    placed = ranked_households(classes).merge(slots, on=["klass", "position"])
    keys = pd.MultiIndex.from_frame(classes[["household_id", "worker_id"]])
    chosen = pd.MultiIndex.from_frame(placed[["household_id", "worker_id"]])
    return pd.Series(keys.isin(chosen), index=classes.index)


def counts_from_allocation(
    classes: pd.DataFrame, model: CountModel, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(n, y) of an allocation given as a mask over classes.index: n counts per counts row; y
    fills the top positions of each level (the rearrangement value, never below the allocation's
    own value)."""
    taken = classes.loc[chosen].groupby(["klass", "worker_id"]).size()
    keys = pd.MultiIndex.from_frame(model.counts[["klass", "worker_id"]])
    n = taken.reindex(keys, fill_value=0).to_numpy(dtype="int64")
    per_row = np.array([n[inside].sum() for inside in model.members], dtype="int64")
    levels = model.levels
    y = (levels["position"].to_numpy() < per_row[levels["row"].to_numpy()]).astype("int64")
    return n, y
