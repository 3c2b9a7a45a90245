"""A LightGBM booster compiled for pattern TreeSHAP: interval cuts and per-leaf Shapley tables.

A tree's SHAP values for a row depend only on which way the row goes at each of the tree's splits,
and a 15-leaf tree sees a few thousand such patterns among 110,000 households. So the booster is
compiled once per model into per-leaf tables (the exact Shapley formula over the leaf's path
features, for every subset of the path features a row can follow) and, per feature, the interval
cuts that decide every split; models._patterns then evaluates rows once per distinct pattern.
Models with categorical splits, over-long paths or too large tables are left to LightGBM's own
pred_contrib (None); linear-leaf models have no TreeSHAP and are refused.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# LightGBM's kZeroThreshold (a float constant widened to double): smaller magnitudes count as 0.
ZERO_THRESHOLD = float(np.float32(1e-35))
# Per-leaf tables hold 2**d x d values (d = distinct features on the leaf's path); a model needing
# more than this many in total is explained by pred_contrib instead.
MAX_TABLE_VALUES = 1 << 26


def iterations(booster) -> int:
    """The iterations the booster predicts with (its best iteration when it stopped early)."""
    best = booster.best_iteration
    return best if best and best > 0 else booster.current_iteration()


@dataclass(frozen=True)
class Tree:
    """One tree, ready for pattern SHAP.

    Bit i of a row's pattern is 1 when the row goes left at the tree's i-th split. `bit_tables[c]`
    gives, per interval code of feature `features[c]`, the bits of the splits on that feature.
    Each (leaf, path feature) pair, listed leaf by leaf, has the bits of the path's splits on the
    feature (`masks`) and the values a row that follows the path has there (`wants`). A leaf's row
    in its table is the binary number of which of its pairs the row follows. `pair_leaf`,
    `pair_stride` and `pair_offset` list the same pairs feature by feature (`feature_starts`), for
    summing each feature's share over the leaves.
    """

    features: np.ndarray
    bit_tables: tuple[np.ndarray, ...]
    n_bits: int
    masks: np.ndarray
    wants: np.ndarray
    pair_position: np.ndarray
    leaf_starts: np.ndarray
    feature_starts: np.ndarray
    pair_leaf: np.ndarray
    pair_stride: np.ndarray
    pair_offset: np.ndarray


@dataclass(frozen=True)
class Forest:
    """A booster compiled for pattern SHAP: interval cuts per feature, trees, leaf tables."""

    cuts: Mapping[int, np.ndarray]
    trees: tuple[Tree, ...]
    table: np.ndarray
    n_features: int
    base_value: float


@dataclass
class _Leaf:
    value: float
    features: list[int]
    masks: list[int]
    wants: list[int]
    zero_fractions: list[float]


def _parse_tree(structure: dict) -> tuple[list[dict], list[_Leaf]]:
    """Splits in visit order (bit positions) and leaves with their path summaries."""
    splits: list[dict] = []
    leaves: list[_Leaf] = []

    def walk(node: dict, path: list[tuple[int, bool, float]]) -> None:
        if "split_index" not in node:
            if "leaf_coeff" in node:
                raise ValueError("a model with linear leaves has no TreeSHAP explanation")
            leaves.append(_leaf(node["leaf_value"], path, splits))
            return
        bit = len(splits)
        splits.append(node)
        count = node["internal_count"]
        for child, went_left in ((node["left_child"], True), (node["right_child"], False)):
            child_count = child.get("internal_count", child.get("leaf_count"))
            walk(child, [*path, (bit, went_left, child_count / count)])

    walk(structure, [])
    return splits, leaves


def _leaf(value: float, path: list[tuple[int, bool, float]], splits: list[dict]) -> _Leaf:
    leaf = _Leaf(float(value), [], [], [], [])
    for bit, went_left, fraction in path:
        feature = splits[bit]["split_feature"]
        if feature not in leaf.features:
            leaf.features.append(feature)
            leaf.masks.append(0)
            leaf.wants.append(0)
            leaf.zero_fractions.append(1.0)
        position = leaf.features.index(feature)
        leaf.masks[position] |= 1 << bit
        leaf.wants[position] |= int(went_left) << bit
        leaf.zero_fractions[position] *= fraction
    return leaf


def _goes_left(values: np.ndarray, split: dict) -> np.ndarray:
    """LightGBM's numerical decision (Tree::NumericalDecision) for each value."""
    missing = split["missing_type"]
    values = np.where(np.isnan(values) & (missing != "NaN"), 0.0, values)
    use_default = ((missing == "Zero") & (np.abs(values) <= ZERO_THRESHOLD)) | (
        (missing == "NaN") & np.isnan(values)
    )
    with np.errstate(invalid="ignore"):
        return np.where(use_default, bool(split["default_left"]), values <= split["threshold"])


def _cuts(trees: list[tuple[list[dict], list[_Leaf]]]) -> dict[int, np.ndarray]:
    """Per feature, the sorted interval upper bounds: every threshold, plus the edges of
    LightGBM's zero band, so that all values in one interval take the same side of every split."""
    thresholds: dict[int, set[float]] = {}
    for splits, _ in trees:
        for split in splits:
            thresholds.setdefault(split["split_feature"], set()).add(float(split["threshold"]))
    edges = {np.nextafter(-ZERO_THRESHOLD, -np.inf), ZERO_THRESHOLD}
    return {feature: np.array(sorted(found | edges)) for feature, found in thresholds.items()}


def _representatives(cuts: np.ndarray) -> np.ndarray:
    """One value per interval code: each interval's upper bound, above the last cut, NaN."""
    values = np.concatenate([cuts, [np.nextafter(cuts[-1], np.inf), np.nan]])
    # LightGBM reads values within the zero band as exactly 0 before deciding.
    return np.where(np.abs(values) <= ZERO_THRESHOLD, 0.0, values)


def interval_codes(cuts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interval code of each value: the position among the cuts, or len(cuts) + 1 for NaN."""
    values = values.astype(np.float64)
    codes = np.searchsorted(cuts, values, side="left")
    codes[np.isnan(values)] = len(cuts) + 1
    return codes


def _shapley_weights(dimension: int) -> np.ndarray:
    return np.array(
        [
            math.factorial(size) * math.factorial(dimension - size - 1) / math.factorial(dimension)
            for size in range(dimension)
        ]
    )


def _leaf_tables(values: np.ndarray, zero_fractions: np.ndarray) -> np.ndarray:
    """SHAP values of leaves with the same number d of path features, for every one of the 2**d
    patterns of which path features a row follows: (leaves, 2**d, d).

    Exact path-dependent TreeSHAP of one leaf with value v: for path feature i,
    phi_i = v (o_i - z_i) sum_k w(k, d) R_k, where R_k are the coefficients of
    prod_{j != i} (z_j + o_j y), z_j the share of training data the path keeps at feature j's
    splits and o_j whether the row follows them. R comes from the full product by dividing out
    feature i's factor: by the constant z_i when o_i = 0, by (z_i + y) when o_i = 1 (synthetic
    division from the highest power down, which is stable as z_i <= 1).
    """
    count, dimension = zero_fractions.shape
    states = ((np.arange(1 << dimension)[:, None] >> np.arange(dimension)) & 1).astype(float)
    product = np.zeros((count, 1 << dimension, dimension + 1))
    product[..., 0] = 1.0
    for j in range(dimension):
        follows = product[..., :-1] * states[None, :, j : j + 1]
        product *= zero_fractions[:, None, None, j]
        product[..., 1:] += follows
    weights = _shapley_weights(dimension)
    # o_i = 0: (0 - z_i) sum_k w_k Q_k / z_i, the same for every i.
    not_followed = -(product[..., :dimension] @ weights)
    tables = np.empty((count, 1 << dimension, dimension))
    for i in range(dimension):
        z_i = zero_fractions[:, None, i]
        quotient = product[..., dimension]
        total = weights[dimension - 1] * quotient
        for k in range(dimension - 1, 0, -1):
            quotient = product[..., k] - z_i * quotient
            total = total + weights[k - 1] * quotient
        followed = (1.0 - z_i) * total
        tables[..., i] = np.where(states[:, i] == 1.0, followed, not_followed)
    return values[:, None, None] * tables


def _fill_tables(leaves: list[_Leaf], offsets: np.ndarray, table: np.ndarray) -> None:
    dimensions = np.array([len(leaf.features) for leaf in leaves])
    for dimension in np.unique(dimensions[dimensions > 0]):
        members = np.flatnonzero(dimensions == dimension)
        # Chunked so the (leaves, 2**d, d + 1) coefficient array stays small.
        step = max(1, (1 << 22) // ((1 << dimension) * (dimension + 1)))
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            tables = _leaf_tables(
                np.array([leaves[i].value for i in chunk]),
                np.array([leaves[i].zero_fractions for i in chunk]),
            )
            size = (1 << dimension) * dimension
            positions = offsets[chunk][:, None] + np.arange(size)
            table[positions] = tables.reshape(len(chunk), size)


def _compiled_tree(
    splits: list[dict], leaves: list[_Leaf], *, cuts: Mapping[int, np.ndarray], offsets: list[int]
) -> Tree:
    features = np.array(sorted({split["split_feature"] for split in splits}), dtype=np.intp)
    bit_tables = []
    for feature in features:
        representatives = _representatives(cuts[feature])
        bits = np.zeros(len(representatives), dtype=np.int64)
        for bit, split in enumerate(splits):
            if split["split_feature"] == feature:
                bits |= _goes_left(representatives, split).astype(np.int64) << bit
        bit_tables.append(bits)
    pairs = [(number, feature) for number, leaf in enumerate(leaves) for feature in leaf.features]
    pair_leaf = np.array([number for number, _ in pairs], dtype=np.intp)
    pair_feature = np.array([feature for _, feature in pairs], dtype=np.intp)
    positions = np.array(
        [leaves[number].features.index(feature) for number, feature in pairs], dtype=np.intp
    )
    by_feature = np.argsort(pair_feature, kind="stable")
    strides = np.array([len(leaves[number].features) for number in pair_leaf], dtype=np.intp)
    offsets = np.array(offsets, dtype=np.intp)[pair_leaf] + positions
    return Tree(
        features=features,
        bit_tables=tuple(bit_tables),
        n_bits=len(splits),
        masks=np.array([mask for leaf in leaves for mask in leaf.masks], dtype=np.int64),
        wants=np.array([want for leaf in leaves for want in leaf.wants], dtype=np.int64),
        pair_position=positions.astype(np.int64),
        leaf_starts=np.flatnonzero(np.r_[True, pair_leaf[1:] != pair_leaf[:-1]]),
        feature_starts=np.searchsorted(pair_feature[by_feature], features),
        pair_leaf=pair_leaf[by_feature],
        pair_stride=strides[by_feature],
        pair_offset=offsets[by_feature],
    )


def compile_forest(booster) -> Forest | None:
    """The booster compiled for pattern SHAP, or None when only pred_contrib can explain it."""
    dump = booster.dump_model(num_iteration=iterations(booster))
    if dump.get("num_tree_per_iteration", 1) != 1:
        raise ValueError("explanations need a binary (single-output) booster")
    parsed = [_parse_tree(tree["tree_structure"]) for tree in dump["tree_info"]]
    splits_all = [split for splits, _ in parsed for split in splits]
    if any(split["decision_type"] != "<=" for split in splits_all) or any(
        len(splits) > 62 for splits, _ in parsed
    ):
        return None
    leaves_all = [leaf for _, leaves in parsed for leaf in leaves]
    sizes = np.array([(1 << len(leaf.features)) * len(leaf.features) for leaf in leaves_all])
    if sizes.sum() > MAX_TABLE_VALUES:
        return None
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    table = np.zeros(int(sizes.sum()))
    _fill_tables(leaves_all, offsets, table)
    cuts = _cuts(parsed)
    trees, start, base_value = [], 0, 0.0
    for splits, leaves in parsed:
        tree_offsets = list(offsets[start : start + len(leaves)])
        start += len(leaves)
        base_value += _expected_value(leaves)
        if splits:
            trees.append(_compiled_tree(splits, leaves, cuts=cuts, offsets=tree_offsets))
    return Forest(
        cuts=cuts,
        trees=tuple(trees),
        table=table,
        n_features=booster.num_feature(),
        base_value=base_value,
    )


def _expected_value(leaves: list[_Leaf]) -> float:
    # The cover-weighted mean leaf value; a leaf's share of the root's data is the product of its
    # path's fractions.
    return sum(leaf.value * math.prod(leaf.zero_fractions) for leaf in leaves)


_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forest(booster) -> Forest | None:
    """The booster's compiled forest, cached per booster object (and its iteration count)."""
    key = (iterations(booster), booster.num_trees())
    cached = _FORESTS.get(booster)
    if cached is None or cached[0] != key:
        cached = (key, compile_forest(booster))
        _FORESTS[booster] = cached
    return cached[1]
