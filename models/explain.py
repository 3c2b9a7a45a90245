"""Why a household is on the list: exact TreeSHAP reasons in plain English, needs, what changed.

Attributions are exact path-dependent TreeSHAP values of the LightGBM booster in log-odds: per
household they add up, with the base value, to the booster's raw score. The calibrator maps that
raw score to the probability shown. Reasons, `needs`, "what changed" and the timeline are written
from the reviewed templates in `reason_templates.toml` (see docs/reasons.md).

Speed. A tree's SHAP values for a row depend only on which way the row goes at each of the tree's
splits, and a 15-leaf tree sees a few thousand such patterns among 110,000 households. So each
tree's SHAP values are computed once per distinct pattern, from per-leaf tables built once per
model (the exact Shapley formula over the leaf's path features), and added to every row with that
pattern. The result equals LightGBM's own `pred_contrib` (the reference `shap.TreeExplainer`
uses for LightGBM) to rounding. A handful of rows, or a model with categorical splits or linear
leaves, goes straight to `pred_contrib`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.labels import DEFAULT_HORIZON_WEEKS
from models import _reasons, _timeline
from models._reasons import GROUPS, NO_GROUP, load_templates
from models._timeline import HouseholdRecords, index_records

__all__ = [
    "BASE_VALUE",
    "EXPECTED_DIRECTIONS",
    "HouseholdRecords",
    "effect_direction_checks",
    "explain_household",
    "explain_households",
    "format_explanation",
    "index_records",
    "shap_attributions",
]

BASE_VALUE = "base_value"
# LightGBM's kZeroThreshold (a float constant widened to double): smaller magnitudes count as 0.
ZERO_THRESHOLD = float(np.float32(1e-35))
# Up to this many rows LightGBM's own pred_contrib is quicker than the pattern tables.
DIRECT_ROWS = 64
# Per-leaf tables hold 2**d x d values (d = distinct features on the leaf's path); a model needing
# more than this many in total is explained by pred_contrib instead.
MAX_TABLE_VALUES = 1 << 26
ROW_CHUNK = 1 << 17
ATTRIBUTION_METHODS: tuple[str, ...] = ("auto", "patterns", "lightgbm")


def model_input(features: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The booster's input: the named columns in order, as float32, as the model is trained and
    scored (models._estimator.feature_matrix), so attributions add up to the scores it gives."""
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack the model's columns: {missing[:10]}")
    return np.ascontiguousarray(features[feature_names].to_numpy(dtype=np.float32))


def _iterations(booster) -> int:
    best = booster.best_iteration
    return best if best and best > 0 else booster.current_iteration()


# --- compiling the forest ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tree:
    """One tree, ready for pattern SHAP.

    Bit i of a row's pattern is 1 when the row goes left at the tree's i-th split. `bit_tables[c]`
    gives, per interval code of feature `features[c]`, the bits of the splits on that feature. Each
    (leaf, path feature) pair has the bits of its path splits on the feature (`masks`) and the
    values a row following the path has there (`wants`); a leaf's table row is the pattern of its
    pairs, read as a binary number (`weights`).
    """

    features: np.ndarray
    bit_tables: tuple[np.ndarray, ...]
    n_bits: int
    masks: np.ndarray
    wants: np.ndarray
    weights: np.ndarray
    pair_leaf: np.ndarray
    pair_stride: np.ndarray
    pair_offset: np.ndarray
    pair_column: np.ndarray


@dataclass(frozen=True)
class _Forest:
    """A booster compiled for pattern SHAP: interval cuts per feature, trees, leaf tables."""

    cuts: Mapping[int, np.ndarray]
    trees: tuple[_Tree, ...]
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
    patterns of which path features the row follows: (leaves, 2**d, d).

    Exact path-dependent TreeSHAP of one leaf: phi_i = v (o_i - z_i) sum_S w(|S|, d)
    prod_{j in S} o_j prod_{j not in S, j != i} z_j, the sum taken via the coefficients of
    prod_{j != i} (z_j + o_j y).
    """
    count, dimension = zero_fractions.shape
    states = ((np.arange(1 << dimension)[:, None] >> np.arange(dimension)) & 1).astype(float)
    same = np.eye(dimension, dtype=bool)
    coefficients = np.zeros((count, 1 << dimension, dimension, dimension))
    coefficients[..., 0] = 1.0
    for j in range(dimension):
        keep = np.where(same[j], 1.0, zero_fractions[:, None, j:j + 1])[:, :, :, None]
        follow = np.where(same[j], 0.0, states[:, j:j + 1])[None, :, :, None]
        shifted = np.concatenate(
            [np.zeros_like(coefficients[..., :1]), coefficients[..., :-1]], axis=-1
        )
        coefficients = keep * coefficients + follow * shifted
    weighted = coefficients @ _shapley_weights(dimension)
    return values[:, None, None] * (states[None] - zero_fractions[:, None, :]) * weighted


def _fill_tables(leaves: list[_Leaf], offsets: np.ndarray, table: np.ndarray) -> None:
    dimensions = np.array([len(leaf.features) for leaf in leaves])
    for dimension in np.unique(dimensions[dimensions > 0]):
        members = np.flatnonzero(dimensions == dimension)
        # Chunked so the (leaves, 2**d, d, d) coefficient array stays small.
        step = max(1, (1 << 22) // ((1 << dimension) * dimension * dimension))
        for start in range(0, len(members), step):
            chunk = members[start:start + step]
            tables = _leaf_tables(
                np.array([leaves[i].value for i in chunk]),
                np.array([leaves[i].zero_fractions for i in chunk]),
            )
            size = (1 << dimension) * dimension
            positions = offsets[chunk][:, None] + np.arange(size)
            table[positions] = tables.reshape(len(chunk), size)


def _compiled_tree(
    splits: list[dict], leaves: list[_Leaf], *, cuts: Mapping[int, np.ndarray], offsets: list[int]
) -> _Tree:
    features = np.array(sorted({split["split_feature"] for split in splits}), dtype=np.intp)
    bit_tables = []
    for feature in features:
        representatives = _representatives(cuts[feature])
        bits = np.zeros(len(representatives), dtype=np.int64)
        for bit, split in enumerate(splits):
            if split["split_feature"] == feature:
                bits |= _goes_left(representatives, split).astype(np.int64) << bit
        bit_tables.append(bits)
    pairs = [(leaf_number, j) for leaf_number, leaf in enumerate(leaves) for j in leaf.features]
    pair_leaves = np.array([leaf for leaf, _ in pairs], dtype=np.intp)
    positions = np.array(
        [leaves[leaf].features.index(feature) for leaf, feature in pairs], dtype=np.intp
    )
    weights = np.zeros((len(pairs), len(leaves)))
    weights[np.arange(len(pairs)), pair_leaves] = np.exp2(positions)
    strides = np.array([len(leaves[leaf].features) for leaf in pair_leaves], dtype=np.intp)
    column = np.zeros((len(pairs), len(features)))
    column[np.arange(len(pairs)), np.searchsorted(features, [f for _, f in pairs])] = 1.0
    return _Tree(
        features=features,
        bit_tables=tuple(bit_tables),
        n_bits=len(splits),
        masks=np.array([m for leaf in leaves for m in leaf.masks], dtype=np.int64),
        wants=np.array([w for leaf in leaves for w in leaf.wants], dtype=np.int64),
        weights=weights,
        pair_leaf=pair_leaves,
        pair_stride=strides,
        pair_offset=np.array(offsets, dtype=np.intp)[pair_leaves] + positions,
        pair_column=column,
    )


def _compile_forest(booster) -> _Forest | None:
    """The booster compiled for pattern SHAP, or None when only pred_contrib can explain it."""
    dump = booster.dump_model(num_iteration=_iterations(booster))
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
        tree_offsets = list(offsets[start:start + len(leaves)])
        start += len(leaves)
        base_value += _expected_value(splits, leaves)
        if splits:
            trees.append(_compiled_tree(splits, leaves, cuts=cuts, offsets=tree_offsets))
    return _Forest(
        cuts=cuts,
        trees=tuple(trees),
        table=table,
        n_features=booster.num_feature(),
        base_value=base_value,
    )


def _expected_value(splits: list[dict], leaves: list[_Leaf]) -> float:
    # The cover-weighted mean leaf value; a leaf's share of the root's data is the product of its
    # path's fractions.
    return sum(leaf.value * math.prod(leaf.zero_fractions) for leaf in leaves)


_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forest(booster) -> _Forest | None:
    key = (_iterations(booster), booster.num_trees(), tuple(booster.feature_name()))
    cached = _FORESTS.get(booster)
    if cached is None or cached[0] != key:
        cached = (key, _compile_forest(booster))
        _FORESTS[booster] = cached
    return cached[1]


# --- attributions ----------------------------------------------------------------------------------


def _distinct_patterns(bits: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    if n_bits <= 20:
        present = np.zeros(1 << n_bits, dtype=bool)
        present[bits] = True
        return np.flatnonzero(present), (np.cumsum(present) - 1)[bits]
    distinct, inverse = np.unique(bits, return_inverse=True)
    return distinct, inverse.reshape(-1)


def _tree_pattern_values(tree: _Tree, patterns: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(features of the tree x patterns) SHAP values of one tree for each distinct pattern."""
    follows = (patterns[:, None] & tree.masks) == tree.wants
    leaf_rows = (follows @ tree.weights).astype(np.intp)
    index = leaf_rows[:, tree.pair_leaf] * tree.pair_stride + tree.pair_offset
    return (table[index] @ tree.pair_column).T.copy()


def _pattern_attributions(forest: _Forest, matrix: np.ndarray) -> np.ndarray:
    n_rows = len(matrix)
    result = np.empty((n_rows, forest.n_features + 1))
    result[:, -1] = forest.base_value
    for start in range(0, n_rows, ROW_CHUNK):
        block = matrix[start:start + ROW_CHUNK]
        codes = {
            feature: interval_codes(cuts, block[:, feature])
            for feature, cuts in forest.cuts.items()
        }
        by_feature = np.zeros((forest.n_features, len(block)))
        for tree in forest.trees:
            bits = tree.bit_tables[0][codes[tree.features[0]]]
            for bit_table, feature in zip(tree.bit_tables[1:], tree.features[1:], strict=True):
                bits = bits + bit_table[codes[feature]]
            patterns, pattern_of_row = _distinct_patterns(bits, tree.n_bits)
            values = _tree_pattern_values(tree, patterns, forest.table)
            for column, feature in enumerate(tree.features):
                by_feature[feature] += values[column][pattern_of_row]
        result[start:start + len(block), :-1] = by_feature.T
    return result


def attribution_matrix(booster, matrix: np.ndarray, *, method: str = "auto") -> np.ndarray:
    """(rows x features + 1) exact TreeSHAP values, the last column the base value."""
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method must be one of {ATTRIBUTION_METHODS}, got {method!r}")
    forest = None if method == "lightgbm" else _forest(booster)
    if method == "patterns" and forest is None:
        raise ValueError("this booster has categorical splits, linear leaves or huge leaf paths")
    if forest is None or (method == "auto" and len(matrix) <= DIRECT_ROWS):
        return booster.predict(matrix, pred_contrib=True, num_iteration=_iterations(booster))
    return _pattern_attributions(forest, matrix)


def shap_attributions(*, booster, features: pd.DataFrame, method: str = "auto") -> pd.DataFrame:
    """Exact TreeSHAP attributions in log-odds, one row per household, plus BASE_VALUE.

    Each row (base value included) sums to the booster's raw score for that household.
    """
    feature_names = list(booster.feature_name())
    values = attribution_matrix(booster, model_input(features, feature_names), method=method)
    return pd.DataFrame(values, index=features.index, columns=[*feature_names, BASE_VALUE])


# --- reasons -------------------------------------------------------------------------------------


def _calibrated(raw_score: np.ndarray, calibrator) -> np.ndarray:
    if calibrator is None:
        return 1.0 / (1.0 + np.exp(-raw_score))
    predict = calibrator if callable(calibrator) else calibrator.predict
    return np.asarray(predict(raw_score), dtype=np.float64)


def _text_values(features: pd.DataFrame) -> dict[str, np.ndarray]:
    needed = [name for group in GROUPS for name in _reasons.text_columns(group)]
    missing = [name for name in needed if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack columns the reason texts show: {missing[:10]}")
    return {name: features[name].to_numpy(np.float64) for name in needed}


def _row_reasons(
    *, features: pd.DataFrame, attributions: np.ndarray, feature_names: list[str],
    agency_names: np.ndarray, max_reasons: int,
) -> _reasons.RowReasons:
    return _reasons.reasons_for_rows(
        values=_text_values(features) | {"agency_names": agency_names},
        attributions=attributions,
        feature_names=feature_names,
        max_reasons=max_reasons,
        templates=load_templates(),
    )


def explain_households(
    *,
    booster,
    features: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    calibrator: Callable[[np.ndarray], np.ndarray] | None = None,
    max_reasons: int | None = None,
) -> pd.DataFrame:
    """Reasons, needs and risk of every household (one row each, in the order of `features`).

    Columns: household_id, raw_score (log-odds), risk (calibrated; logistic when no calibrator),
    band, reasons (texts joined by " | ", or the "no single strong factor" line), needs (skills,
    ";"-separated, contract order), reason_groups (";"-separated indicator keys), strong_reasons
    (how many shown) and share_1..share_<max_reasons> (each reason's share of the upward push).
    """
    templates = load_templates()
    max_reasons = templates.max_reasons if max_reasons is None else max_reasons
    feature_names = list(booster.feature_name())
    attributions = attribution_matrix(booster, model_input(features, feature_names))
    agency_names = _reasons.recent_agency_names(
        tables["events"], household_ids=pd.Index(features.index), as_of=as_of, templates=templates
    )
    reasons = _row_reasons(
        features=features,
        attributions=attributions[:, :-1],
        feature_names=feature_names,
        agency_names=agency_names,
        max_reasons=max_reasons,
    )
    raw_score = attributions.sum(axis=1)
    risk = _calibrated(raw_score, calibrator)
    group_keys = np.array([*_reasons.GROUP_KEYS, ""], dtype=object)
    keys = group_keys[reasons.group]
    return pd.DataFrame(
        {
            "household_id": pd.array(features.index.astype(str), dtype="str"),
            "raw_score": raw_score,
            "risk": risk,
            "band": pd.array(_reasons.risk_bands(risk, templates=templates), dtype="str"),
            "reasons": pd.array(
                _reasons.joined_text(reasons, templates=templates).astype(object), dtype="str"
            ),
            "needs": pd.array(_reasons.needs_text(reasons), dtype="str"),
            "reason_groups": pd.array(
                [";".join(key for key in row if key) for row in keys], dtype="str"
            ),
            "strong_reasons": reasons.count.astype(np.int64),
        }
        | {f"share_{rank + 1}": reasons.share[:, rank] for rank in range(max_reasons)}
    )


def _reason_list(reasons: _reasons.RowReasons, row: int) -> list[dict[str, object]]:
    templates = load_templates()
    return [
        {
            "group": GROUPS[group].key,
            "text": str(reasons.text[row, rank]),
            "share": float(reasons.share[row, rank]),
            "contribution": float(reasons.contribution[row, rank]),
            "skills": _reasons.skills_of_mask(int(reasons.skills[row, rank])),
        }
        for rank, group in enumerate(reasons.group[row])
        if group != NO_GROUP
    ] if templates else []


def _explanation_core(
    *, booster, features: pd.DataFrame, household: Mapping[str, pd.DataFrame], as_of,
    calibrator, max_reasons: int,
) -> dict[str, object]:
    templates = load_templates()
    feature_names = list(booster.feature_name())
    attributions = attribution_matrix(booster, model_input(features, feature_names))
    agency_names = _reasons.recent_agency_names(
        household["events"], household_ids=pd.Index(features.index), as_of=as_of,
        templates=templates,
    )
    reasons = _row_reasons(
        features=features, attributions=attributions[:, :-1], feature_names=feature_names,
        agency_names=agency_names, max_reasons=max_reasons,
    )
    raw_score = float(attributions[0].sum())
    risk = float(_calibrated(np.array([raw_score]), calibrator)[0])
    reason_list = _reason_list(reasons, 0)
    return {
        "risk": risk,
        "band": str(_reasons.risk_bands(np.array([risk]), templates=templates)[0]),
        "raw_score": raw_score,
        "base_value": float(attributions[0, -1]),
        "reasons": reason_list,
        "no_strong_reason": None if reason_list else templates.no_strong_reason,
        "needs": str(_reasons.needs_text(reasons)[0]),
    }


def _household_row(features: pd.DataFrame, household_id: str, *, as_of) -> pd.DataFrame | None:
    if household_id not in features.index:
        return None
    return features.loc[[household_id]]


def explain_household(
    *,
    booster,
    household_id: str,
    features: pd.DataFrame,
    records: HouseholdRecords | Mapping[str, pd.DataFrame],
    as_of,
    previous_features: pd.DataFrame | None = None,
    calibrator: Callable[[np.ndarray], np.ndarray] | None = None,
    max_reasons: int | None = None,
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS,
) -> dict[str, object]:
    """One household's explanation as a JSON-ready dict.

    `features` are as of `as_of` and `previous_features` as of 7 days earlier (both indexed by
    household_id; other households may be present). `records` is `index_records(tables)` (fast,
    for a service) or the tables themselves. Keys: household_id, as_of, horizon_weeks, risk, band,
    raw_score, base_value, reasons [{group, text, share, contribution, skills}], no_strong_reason
    (the line shown when there are no reasons, else None), needs, what_changed {...}, timeline [...].
    """
    templates = load_templates()
    max_reasons = templates.max_reasons if max_reasons is None else max_reasons
    as_of = pd.Timestamp(as_of).normalize()
    previous_as_of = as_of - pd.Timedelta(days=7)
    row = _household_row(features, household_id, as_of=as_of)
    if row is None:
        raise ValueError(f"household {household_id!r} has no features as of {as_of.date()}")
    household = _timeline.household_tables(records, household_id)
    common = {"booster": booster, "household": household, "calibrator": calibrator}
    now = _explanation_core(features=row, as_of=as_of, max_reasons=max_reasons, **common)
    previous_row = None
    if previous_features is not None:
        previous_row = _household_row(previous_features, household_id, as_of=previous_as_of)
    then = None
    if previous_row is not None:
        then = _explanation_core(
            features=previous_row, as_of=previous_as_of, max_reasons=max_reasons, **common
        )
    new_records = _timeline.timeline(
        household, as_of=as_of, templates=templates, shared_after=previous_as_of
    )
    return {
        "household_id": str(household_id),
        "as_of": as_of.date().isoformat(),
        "horizon_weeks": int(horizon_weeks),
        **now,
        "what_changed": _timeline.what_changed(
            now=now, then=then, previous_as_of=previous_as_of, new_records=new_records
        ),
        "timeline": _timeline.timeline(household, as_of=as_of, templates=templates),
    }
