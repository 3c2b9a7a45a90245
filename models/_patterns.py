"""Attributions of many rows from a compiled forest (models._forest), once per split pattern.

Rows with the same interval code on every split feature take the same side of every split, so they
are evaluated once; per tree, each distinct pattern of which way a row goes gets its SHAP values
from the leaf tables and they are added to every row with that pattern.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from models._forest import Forest, Tree, interval_codes

ROW_CHUNK = 1 << 17


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


def _tree_pattern_values(tree: Tree, patterns: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(features of the tree x patterns) SHAP values of one tree for each distinct pattern."""
    follows = (patterns[:, None] & tree.masks) == tree.wants
    leaf_rows = np.add.reduceat(follows << tree.pair_position, tree.leaf_starts, axis=1)
    index = leaf_rows[:, tree.pair_leaf] * tree.pair_stride + tree.pair_offset
    values = np.add.reduceat(table[index], tree.feature_starts, axis=1)
    return np.ascontiguousarray(values.T)


def pattern_attributions(forest: Forest, matrix: np.ndarray) -> np.ndarray:
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


def _block_attributions(forest: Forest, codes: Mapping[int, np.ndarray]) -> np.ndarray:
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
