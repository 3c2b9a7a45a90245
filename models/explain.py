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
uses for LightGBM) to rounding. A handful of rows, or a model with categorical splits, goes
straight to `pred_contrib`. Linear-leaf models have no TreeSHAP and are refused.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import ARREARS_TYPES, TREND_WEEKS
from features.contract import EVENT_TYPES
from features.labels import DEFAULT_HORIZON_WEEKS
from models import _reasons, _timeline
from models._reasons import GROUPS, NO_GROUP, load_templates
from models._reasons import TEMPLATES_PATH as REASON_TEMPLATES_PATH
from models._timeline import TIMELINE_FIELDS, HouseholdRecords, Timelines, index_records

__all__ = [
    "BASE_VALUE",
    "EXPECTED_EFFECTS",
    "ExpectedEffect",
    "TIMELINE_FIELDS",
    "HouseholdRecords",
    "REASON_TEMPLATES_PATH",
    "Timelines",
    "effect_direction_checks",
    "explain_household",
    "explain_households",
    "format_explanation",
    "group_attributions",
    "household_timeline",
    "household_timelines",
    "index_records",
    "risk_bands",
    "shap_attributions",
    "shared_since",
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


def model_input(features: pd.DataFrame, feature_names: list[str], *, booster=None) -> np.ndarray:
    """The booster's input: the named columns in order, as float32, as the model is trained and
    scored (models._estimator.feature_matrix), so attributions add up to the scores it gives.

    A pandas category column goes in as the code of its category among the categories the booster
    was trained with (`booster.pandas_categorical`, in column order), as LightGBM itself does when
    it predicts from a frame; an unknown category is missing. Without the booster, or when the
    columns do not match its training categories, a category column is refused by name.
    """
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack the model's columns: {missing[:10]}")
    frame = features[feature_names]
    if has_categories(frame, booster):
        frame = frame.assign(**_category_codes(frame, booster))
    return frame.to_numpy(dtype=np.float32)


def _category_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]


def has_categories(features: pd.DataFrame, booster) -> bool:
    """Whether the features hold a category column or the booster was trained with some."""
    trained = None if booster is None else booster.pandas_categorical
    return bool(trained) or any(isinstance(d, pd.CategoricalDtype) for d in features.dtypes)


def _category_codes(frame: pd.DataFrame, booster) -> dict[str, np.ndarray]:
    """Each category column as the codes of the booster's training categories (NaN if unknown)."""
    categorical = _category_columns(frame)
    if booster is None:
        raise ValueError(
            f"category column {categorical[0]!r}: its codes depend on the categories the model "
            "was trained with; pass the booster"
        )
    trained = booster.pandas_categorical or []
    if len(trained) != len(categorical):
        raise ValueError(
            f"the model was trained with {len(trained)} pandas category columns, the features "
            f"have {len(categorical)} ({categorical}): a category column must stay one, or its "
            "splits would be read at the wrong codes"
        )
    codes = {}
    for name, categories in zip(categorical, trained, strict=True):
        code = frame[name].cat.set_categories(categories).cat.codes.to_numpy()
        codes[name] = np.where(code >= 0, code, np.nan)
    return codes


def _iterations(booster) -> int:
    best = booster.best_iteration
    return best if best and best > 0 else booster.current_iteration()


# --- compiling the forest ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tree:
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
    pairs = [(number, feature) for number, leaf in enumerate(leaves) for feature in leaf.features]
    pair_leaf = np.array([number for number, _ in pairs], dtype=np.intp)
    pair_feature = np.array([feature for _, feature in pairs], dtype=np.intp)
    positions = np.array(
        [leaves[number].features.index(feature) for number, feature in pairs], dtype=np.intp
    )
    by_feature = np.argsort(pair_feature, kind="stable")
    strides = np.array([len(leaves[number].features) for number in pair_leaf], dtype=np.intp)
    offsets = np.array(offsets, dtype=np.intp)[pair_leaf] + positions
    return _Tree(
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
        tree_offsets = list(offsets[start : start + len(leaves)])
        start += len(leaves)
        base_value += _expected_value(leaves)
        if splits:
            trees.append(_compiled_tree(splits, leaves, cuts=cuts, offsets=tree_offsets))
    return _Forest(
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
_FEATURE_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_names_of(booster) -> list[str]:
    """The booster's feature names (cached: LightGBM builds them afresh on every call)."""
    if booster not in _FEATURE_NAMES:
        _FEATURE_NAMES[booster] = tuple(booster.feature_name())
    return list(_FEATURE_NAMES[booster])


def _forest(booster) -> _Forest | None:
    key = (_iterations(booster), booster.num_trees())
    cached = _FORESTS.get(booster)
    if cached is None or cached[0] != key:
        cached = (key, _compile_forest(booster))
        _FORESTS[booster] = cached
    return cached[1]


# --- attributions --------------------------------------------------------------------------------


def _distinct_patterns(bits: np.ndarray, n_bits: int, *, out: np.ndarray) -> np.ndarray:
    """The distinct patterns, ascending; `out` receives each row's position among them."""
    if n_bits <= 20:
        present = np.zeros(1 << n_bits, dtype=bool)
        present[bits] = True
        np.take(np.cumsum(present) - 1, bits, out=out, mode="clip")
        return np.flatnonzero(present)
    distinct, inverse = np.unique(bits, return_inverse=True)
    out[:] = inverse.reshape(-1)
    return distinct


def _tree_pattern_values(tree: _Tree, patterns: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(features of the tree x patterns) SHAP values of one tree for each distinct pattern."""
    follows = (patterns[:, None] & tree.masks) == tree.wants
    leaf_rows = np.add.reduceat(follows << tree.pair_position, tree.leaf_starts, axis=1)
    index = leaf_rows[:, tree.pair_leaf] * tree.pair_stride + tree.pair_offset
    values = np.add.reduceat(table[index], tree.feature_starts, axis=1)
    return np.ascontiguousarray(values.T)


def _pattern_attributions(forest: _Forest, matrix: np.ndarray) -> np.ndarray:
    # Filled feature by feature and returned transposed (a Fortran-ordered rows x features view):
    # pandas stores a frame's columns that way, so no copy is made on the way out.
    n_rows = len(matrix)
    by_feature = np.empty((forest.n_features + 1, n_rows))
    by_feature[-1] = forest.base_value
    columns = np.asfortranarray(matrix)
    for start in range(0, n_rows, ROW_CHUNK):
        block = columns[start : start + ROW_CHUNK]
        codes = {
            feature: interval_codes(cuts, block[:, feature])
            for feature, cuts in forest.cuts.items()
        }
        distinct, row_of = _distinct_rows(codes, len(block))
        values = _block_attributions(forest, {f: code[distinct] for f, code in codes.items()})
        for feature, feature_values in enumerate(values):
            np.take(feature_values, row_of, out=by_feature[feature, start : start + len(block)])
    return by_feature.T


def _distinct_rows(codes: Mapping[int, np.ndarray], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct combination of interval codes, and each row's combination.

    Rows with the same codes take the same side of every split, so they have the same SHAP
    values. Rows are grouped by a hash of their codes, and the grouping is then checked code by
    code, so a hash collision can never merge two different rows (it only loses the saving).
    """
    multipliers = np.random.default_rng(0).integers(1, 2**62, size=len(codes), dtype=np.uint64)
    hashes = np.zeros(n_rows, dtype=np.uint64)
    for multiplier, code in zip(multipliers, codes.values(), strict=True):
        hashes = hashes * np.uint64(0x9E3779B97F4A7C15) + code.astype(np.uint64) * multiplier
    row_of, distinct_hashes = pd.factorize(hashes)
    first = np.full(len(distinct_hashes), n_rows, dtype=np.intp)
    np.minimum.at(first, row_of, np.arange(n_rows))
    if all(np.array_equal(code[first][row_of], code) for code in codes.values()):
        return first, row_of
    return np.arange(n_rows), np.arange(n_rows)


def _block_attributions(forest: _Forest, codes: Mapping[int, np.ndarray]) -> np.ndarray:
    """(features x rows) SHAP values of rows given by their interval codes, tree by tree."""
    n_rows = len(next(iter(codes.values())))
    by_feature = np.zeros((forest.n_features, n_rows))
    # Reused buffers: fresh arrays of this size would each cost page faults, tree after tree.
    bits, gathered = np.empty(n_rows, np.int64), np.empty(n_rows, np.int64)
    pattern_of_row, contribution = np.empty(n_rows, np.intp), np.empty(n_rows)
    for tree in forest.trees:
        np.take(tree.bit_tables[0], codes[tree.features[0]], out=bits, mode="clip")
        for bit_table, feature in zip(tree.bit_tables[1:], tree.features[1:], strict=True):
            np.take(bit_table, codes[feature], out=gathered, mode="clip")
            np.bitwise_or(bits, gathered, out=bits)
        patterns = _distinct_patterns(bits, tree.n_bits, out=pattern_of_row)
        values = _tree_pattern_values(tree, patterns, forest.table)
        for column, feature in enumerate(tree.features):
            np.take(values[column], pattern_of_row, out=contribution, mode="clip")
            np.add(by_feature[feature], contribution, out=by_feature[feature])
    return by_feature


def attribution_matrix(booster, matrix: np.ndarray, *, method: str = "auto") -> np.ndarray:
    """(rows x features + 1) exact TreeSHAP values, the last column the base value."""
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method must be one of {ATTRIBUTION_METHODS}, got {method!r}")
    direct = method == "lightgbm" or (method == "auto" and len(matrix) <= DIRECT_ROWS)
    forest = None if direct else _forest(booster)
    if method == "patterns" and forest is None:
        raise ValueError("this booster has categorical splits, linear leaves or huge leaf paths")
    if forest is not None:
        return _pattern_attributions(forest, matrix)
    # One thread for a few rows: waking a thread pool costs more than the work.
    threads = {"num_threads": 1} if len(matrix) <= DIRECT_ROWS else {}
    return booster.predict(
        np.ascontiguousarray(matrix),
        pred_contrib=True,
        num_iteration=_iterations(booster),
        **threads,
    )


def shap_attributions(*, booster, features: pd.DataFrame, method: str = "auto") -> pd.DataFrame:
    """Exact TreeSHAP attributions in log-odds, one row per household, plus BASE_VALUE.

    Each row (base value included) sums to the booster's raw score for that household.
    """
    feature_names = feature_names_of(booster)
    matrix = model_input(features, feature_names, booster=booster)
    values = attribution_matrix(booster, matrix, method=method)
    return pd.DataFrame(values, index=features.index, columns=[*feature_names, BASE_VALUE])


def group_attributions(attributions: pd.DataFrame) -> pd.DataFrame:
    """Attributions summed per reason group (households x groups, in template order); the base
    value is left out. A group's sum is the contribution its reason reports."""
    names = [name for name in attributions.columns if name != BASE_VALUE]
    by_group = _reasons.group_contributions(attributions[names].to_numpy(), names)
    return pd.DataFrame(by_group, index=attributions.index, columns=list(_reasons.GROUP_KEYS))


# --- reasons -------------------------------------------------------------------------------------


def _calibrated(raw_score: np.ndarray, calibrator) -> np.ndarray:
    if calibrator is None:
        return 1.0 / (1.0 + np.exp(-raw_score))
    predict = calibrator if callable(calibrator) else calibrator.predict
    return np.asarray(predict(raw_score), dtype=np.float64)


def _text_column_names(features: pd.DataFrame) -> list[str]:
    needed = [name for group in GROUPS for name in _reasons.text_columns(group)]
    missing = [name for name in needed if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack columns the reason texts show: {missing[:10]}")
    return needed


def _row_reasons(
    *,
    values: Mapping[str, np.ndarray],
    attributions: np.ndarray,
    feature_names: list[str],
    max_reasons: int,
) -> _reasons.RowReasons:
    return _reasons.reasons_for_rows(
        values=values,
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
    feature_names = feature_names_of(booster)
    attributions = attribution_matrix(
        booster, model_input(features, feature_names, booster=booster)
    )
    agency_names = _reasons.recent_agency_names(
        tables["events"], household_ids=pd.Index(features.index), as_of=as_of, templates=templates
    )
    values = {name: features[name].to_numpy(np.float64) for name in _text_column_names(features)}
    reasons = _row_reasons(
        values=values | {"agency_names": agency_names},
        attributions=attributions[:, :-1],
        feature_names=feature_names,
        max_reasons=max_reasons,
    )
    raw_score = attributions.sum(axis=1)
    risk = _calibrated(raw_score, calibrator)
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
                _reasons.group_keys_text(reasons).astype(object), dtype="str"
            ),
            "strong_reasons": reasons.count.astype(np.int64),
        }
        | {f"share_{rank + 1}": reasons.share[:, rank] for rank in range(max_reasons)}
    )


def _reason_list(reasons: _reasons.RowReasons, row: int) -> list[dict[str, object]]:
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
    ]


def _has_row(frame: pd.DataFrame | None, household_id: str) -> bool:
    return frame is not None and household_id in frame.index


def _household_rows(
    frames: list[pd.DataFrame | None], household_id: str, *, names: list[str]
) -> list[np.ndarray | None]:
    """The household's row of each frame as float64 values of `names` (None where absent)."""
    rows = []
    for frame in frames:
        if not _has_row(frame, household_id):
            rows.append(None)
            continue
        positions = frame.columns.get_indexer(names)
        if (positions < 0).any():
            missing = [name for name, at in zip(names, positions, strict=True) if at < 0]
            raise ValueError(f"the features lack columns: {missing[:10]}")
        row = frame.iloc[frame.index.get_loc(household_id)].to_numpy(np.float64)
        rows.append(row[positions])
    return rows


def _explanations(
    *,
    booster,
    feature_names: list[str],
    matrix: np.ndarray,
    rows: np.ndarray,
    value_names: list[str],
    agency_names: np.ndarray,
    calibrator,
    max_reasons: int,
) -> list[dict[str, object]]:
    """Risk, band, reasons and needs of a few rows of one household (e.g. this week and last):
    `matrix` is their model input, `rows` their values of `value_names` for the texts."""
    templates = load_templates()
    values = dict(zip(value_names, rows.T, strict=True))
    attributions = attribution_matrix(booster, np.ascontiguousarray(matrix))
    reasons = _row_reasons(
        values=values | {"agency_names": agency_names},
        attributions=attributions[:, :-1],
        feature_names=feature_names,
        max_reasons=max_reasons,
    )
    raw_score = attributions.sum(axis=1)
    risk = _calibrated(raw_score, calibrator)
    bands = _reasons.risk_bands(risk, templates=templates)
    needs = _reasons.needs_text(reasons)
    explanations = []
    for row in range(len(rows)):
        reason_list = _reason_list(reasons, row)
        explanations.append(
            {
                "risk": float(risk[row]),
                "band": str(bands[row]),
                "raw_score": float(raw_score[row]),
                "base_value": float(attributions[row, -1]),
                "reasons": reason_list,
                "no_strong_reason": None if reason_list else templates.no_strong_reason,
                "needs": str(needs[row]),
            }
        )
    return explanations


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
    for a service) or the tables themselves. Keys: household_id, as_of, horizon_weeks, risk,
    band, raw_score, base_value, reasons [{group, text, share, contribution, skills}],
    no_strong_reason (the line shown when there are no reasons, else None), needs,
    what_changed {...} and timeline [...].
    """
    templates = load_templates()
    max_reasons = templates.max_reasons if max_reasons is None else max_reasons
    as_of = pd.Timestamp(as_of).normalize()
    previous_as_of = as_of - pd.Timedelta(days=7)
    feature_names = feature_names_of(booster)
    names = list(dict.fromkeys([*feature_names, *_text_column_names(features)]))
    frames = [features, previous_features]
    now_row, then_row = _household_rows(frames, household_id, names=names)
    if now_row is None:
        raise ValueError(f"household {household_id!r} has no features as of {as_of.date()}")
    rows = np.vstack([row for row in (now_row, then_row) if row is not None])
    matrix = rows[:, : len(feature_names)].astype(np.float32)
    if has_categories(features, booster):
        # Category columns go in as the codes the booster was trained with.
        present = [frame.loc[[household_id]] for frame in frames if _has_row(frame, household_id)]
        matrix = np.vstack([model_input(one, feature_names, booster=booster) for one in present])
    household = _timeline.household_tables(records, household_id)
    dates = [as_of] if then_row is None else [as_of, previous_as_of]
    agency_names = np.array(
        [
            _reasons.household_agency_names(household["events"], as_of=date, templates=templates)
            for date in dates
        ],
        dtype=_reasons.TEXT,
    )
    now, *then = _explanations(
        booster=booster,
        feature_names=feature_names,
        matrix=matrix,
        rows=rows,
        value_names=names,
        agency_names=agency_names,
        calibrator=calibrator,
        max_reasons=max_reasons,
    )
    story = _timeline.timeline(household, as_of=as_of, templates=templates)
    new_records = _timeline.shared_since(story, since=previous_as_of)
    return {
        "household_id": str(household_id),
        "as_of": as_of.date().isoformat(),
        "horizon_weeks": int(horizon_weeks),
        **now,
        "what_changed": _timeline.what_changed(
            now=now,
            then=then[0] if then else None,
            previous_as_of=previous_as_of,
            new_records=new_records,
        ),
        "timeline": story,
    }


def household_timeline(
    *, records: HouseholdRecords | Mapping[str, pd.DataFrame], household_id: str, as_of
) -> list[dict[str, object]]:
    """The household's records across agencies shared by `as_of`, most recent first."""
    household = _timeline.household_tables(records, household_id)
    return _timeline.timeline(household, as_of=as_of, templates=load_templates())


def household_timelines(*, records: HouseholdRecords, as_of, household_ids=None) -> Timelines:
    """`household_timeline` for many households at once, as columns (default: every household
    with a record): what a weekly run's pages are made from."""
    return _timeline.timelines(
        records, as_of=as_of, templates=load_templates(), household_ids=household_ids
    )


def shared_since(entries: list[dict[str, object]], *, since) -> list[dict[str, object]]:
    """The timeline entries shared after `since` (a week's new records)."""
    return _timeline.shared_since(entries, since=since)


def risk_bands(risk: np.ndarray) -> np.ndarray:
    """The reviewed band label ("low" ... "very high") of each calibrated probability."""
    return _reasons.risk_bands(np.asarray(risk, dtype=np.float64), templates=load_templates())


# --- text for the terminal -----------------------------------------------------------------------


def _percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.01 else f"{probability:.1%}"


def _date(iso: str) -> str:
    return pd.Timestamp(iso).strftime("%-d %b %Y")


def _entry_line(entry: Mapping[str, object]) -> str:
    about = f" ({entry['about']})" if entry["about"] else ""
    return f"  {_date(entry['date']):>11}  {entry['agency']:<24} {entry['what']}{about}"


def _changes_lines(changed: Mapping[str, object]) -> list[str]:
    lines = [f"What changed since {_date(changed['previous_as_of'])}:"]
    if changed["risk_then"] is not None:
        lines.append(
            f"  Risk {_percent(changed['risk_then'])} ({changed['band_then']}) -> "
            f"{_percent(changed['risk_now'])} ({changed['band_now']})"
        )
    lines += [f"  New reason: {text}" for text in changed["reasons_appeared"]]
    lines += [f"  No longer a reason: {text}" for text in changed["reasons_faded"]]
    records = changed["new_records"]
    lines.append(f"  {len(records)} new record{'s' if len(records) != 1 else ''} shared")
    return lines + [_entry_line(entry) for entry in records]


def format_explanation(explanation: Mapping[str, object], *, timeline_lines: int = 25) -> str:
    """The explanation as plain text for a terminal (the CLI's `rebalance explain`)."""
    lines = [
        f"Household {explanation['household_id']} as of {_date(explanation['as_of'])}",
        f"Risk of a crisis within {explanation['horizon_weeks']} weeks: "
        f"{_percent(explanation['risk'])} ({explanation['band']})",
        "",
    ]
    if explanation["reasons"]:
        lines.append("Why (share of what pushes the risk up):")
        lines += [
            f"  {rank}. {reason['text']} ({reason['share']:.0%})"
            for rank, reason in enumerate(explanation["reasons"], start=1)
        ]
    else:
        lines.append(str(explanation["no_strong_reason"]))
    lines += [f"Needs: {explanation['needs'].replace(';', ', ') or 'none identified'}", ""]
    if explanation["what_changed"] is not None:
        lines += [*_changes_lines(explanation["what_changed"]), ""]
    entries = explanation["timeline"]
    lines.append(f"Timeline, most recent first ({len(entries)} records):")
    lines += [_entry_line(entry) for entry in entries[:timeline_lines]]
    if len(entries) > timeline_lines:
        lines.append(f"  ... and {len(entries) - timeline_lines} earlier records (see --json)")
    return "\n".join(lines)


# --- direction of the main effects -------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedEffect:
    """A reviewed expectation: the higher `measure`, the more `name` pushes the risk up
    (`direction` +1) or down (-1). `name` is a feature (its own SHAP value) or a reason group
    (the group's summed SHAP value: the main effect of the whole indicator)."""

    name: str
    measure: str
    direction: int


def _expected_effects() -> tuple[ExpectedEffect, ...]:
    balances = [f"{name}_balance_latest" for name in ARREARS_TYPES]
    rises = [f"{name}_change_{TREND_WEEKS}w" for name in ARREARS_TYPES]
    features = [ExpectedEffect(name, name, 1) for name in (*balances, *rises, "agencies_26w")]
    # Per indicator, not per window: given the 13-week count, a higher 52-week count means older
    # records, and the model may rightly weigh those less; the indicator as a whole should not.
    measures = {name: f"{name}_count_52w" for name in EVENT_TYPES}
    measures |= {name: f"{name}_balance_latest" for name in ARREARS_TYPES}
    measures["school_absence"] = "school_absence_sessions_52w"
    indicators = [ExpectedEffect(group, measure, 1) for group, measure in measures.items()]
    return (*features, *indicators, ExpectedEffect("agencies", "agencies_26w", 1))


# Reviewed: more arrears, rising arrears, more agencies and more records of any kind in the last
# year never lower the risk.
EXPECTED_EFFECTS: tuple[ExpectedEffect, ...] = _expected_effects()


def _spearman(values: np.ndarray, attributions: np.ndarray) -> float:
    if np.unique(values).size < 2 or np.unique(attributions).size < 2:
        return float("nan")
    ranks = pd.DataFrame({"value": values, "shap": attributions}).rank()
    return float(np.corrcoef(ranks["value"], ranks["shap"])[0, 1])


def _effect_row(effect: ExpectedEffect, values: np.ndarray, pushes: np.ndarray) -> dict:
    known = ~np.isnan(values)
    correlation = _spearman(values[known], pushes[known])
    status = "not tested"
    if not np.isnan(correlation):
        status = "pass" if effect.direction * correlation >= 0 else "fail"
    return {
        "name": effect.name,
        "level": "feature" if effect.name == effect.measure else "indicator",
        "measure": effect.measure,
        "expected": "higher, more risk" if effect.direction > 0 else "higher, less risk",
        "correlation": correlation,
        "rows": int(known.sum()),
        "status": status,
    }


def effect_direction_checks(
    *, booster, features: pd.DataFrame, attributions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Does each reviewed main effect push risk the expected way? (a table for the model card)

    For each of EXPECTED_EFFECTS the model uses: the Spearman correlation between the measure's
    value (missing values left out) and the SHAP value of the feature or of the whole reason
    group, and its status: "pass" when the sign matches, "fail" when not, "not tested" when
    either never varies. A failure is for a person to look at before the model is promoted.
    """
    if attributions is None:
        attributions = shap_attributions(booster=booster, features=features)
    by_group = group_attributions(attributions)
    used = set(feature_names_of(booster))
    groups_used = {_reasons.FEATURE_GROUPS[name] for name in used}
    rows = []
    for effect in EXPECTED_EFFECTS:
        pushes = attributions.get(effect.name) if effect.name in used else None
        if effect.name in groups_used and effect.name not in used:
            pushes = by_group[effect.name]
        if pushes is None or effect.measure not in features.columns:
            continue
        values = features[effect.measure].to_numpy(np.float64)
        rows.append(_effect_row(effect, values, pushes.to_numpy()))
    columns = ["name", "level", "measure", "expected", "correlation", "rows", "status"]
    return pd.DataFrame(rows, columns=columns)
