"""Reasons a key worker can read: the strongest indicator groups, in the household's own figures.

A group's contribution is the sum of its features' TreeSHAP contributions (models._reason_groups).
The reasons shown are the groups that push the household's risk up by at least the reviewed
threshold, that the household actually has records for, largest first, at most `max_reasons`.
Their text comes from `reason_templates.toml` (models._templates, models._reason_texts) and shows
the household's own figures, never a verdict. Text is rendered with numpy string operations per
group and variant, not per household.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import SKILLS
from models._phrases import TEXT
from models._reason_groups import (
    FEATURE_GROUPS,
    GROUP_KEYS,
    GROUPS,
    KIND_VARIANTS,
    NO_GROUP,
    group_contributions,
    text_columns,
)
from models._reason_texts import KIND_FUNCTIONS, Columns
from models._templates import TEMPLATES_PATH, Templates, load_templates, render

# The template loader is also reached from here by older import lines.
__all__ = [
    "TEMPLATES_PATH",
    "RowReasons",
    "Templates",
    "group_keys_text",
    "join_columns",
    "joined_text",
    "load_templates",
    "needs_text",
    "reasons_for_rows",
    "risk_bands",
    "skill_mask",
    "skills_of_mask",
]


@dataclass(frozen=True)
class RowReasons:
    """Reasons of many households: (households x max_reasons) arrays, best reason first.

    `group` is a position in GROUPS (-1 where a household has fewer reasons), `contribution` the
    group's summed TreeSHAP (log-odds), `share` its part of everything that pushes the household's
    risk up, `text` the rendered sentence and `skills` a bitmask over SKILLS.
    """

    group: np.ndarray
    contribution: np.ndarray
    share: np.ndarray
    text: np.ndarray
    skills: np.ndarray

    @property
    def count(self) -> np.ndarray:
        return (self.group != NO_GROUP).sum(axis=1)


def reasons_for_rows(
    *,
    values: Columns,
    attributions: np.ndarray,
    feature_names: list[str],
    max_reasons: int,
    templates: Templates,
) -> RowReasons:
    """Choose and write the reasons of every row (rows of `values` align with `attributions`)."""
    pushes = _feature_pushes(attributions, feature_names)
    by_group = group_contributions(attributions, feature_names)
    variants = np.column_stack(
        [KIND_FUNCTIONS[group.kind][0](group.key, values, pushes) for group in GROUPS]
    )
    strong = (variants != NO_GROUP) & (by_group >= templates.strong_reason_log_odds)
    strength = np.where(strong, by_group, -np.inf)
    # Stable: equal pushes keep the GROUPS order, so the same input always gives the same reasons.
    chosen = np.argsort(-strength, axis=1, kind="stable")[:, :max_reasons]
    chosen_strength = np.take_along_axis(strength, chosen, axis=1)
    group = np.where(np.isfinite(chosen_strength), chosen, NO_GROUP)
    positive_push = np.maximum(by_group, 0.0).sum(axis=1, keepdims=True)
    contribution = np.where(group != NO_GROUP, chosen_strength, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = contribution / positive_push
    text, skills = _render_chosen(group, variants, values, pushes, templates)
    return RowReasons(group=group, contribution=contribution, share=share, text=text, skills=skills)


def _feature_pushes(attributions: np.ndarray, feature_names: list[str]) -> dict[str, np.ndarray]:
    zeros = np.zeros(len(attributions))
    pushes = dict.fromkeys(FEATURE_GROUPS, zeros)
    pushes |= {name: attributions[:, column] for column, name in enumerate(feature_names)}
    return pushes


def _render_chosen(group, variants, values, pushes, templates) -> tuple[np.ndarray, np.ndarray]:
    text = np.full(group.shape, "", dtype=TEXT)
    skills = np.zeros(group.shape, dtype=np.int64)
    for position, spec in enumerate(GROUPS):
        rows, ranks = np.nonzero(group == position)
        if not len(rows):
            continue
        names = [*text_columns(spec), *(("agency_names",) if spec.kind == "agencies" else ())]
        subset = {name: values[name][rows] for name in names if name in values}
        subset_pushes = {name: pushes[name][rows] for name in text_columns(spec)}
        fields = KIND_FUNCTIONS[spec.kind][1](spec.key, subset, subset_pushes, templates)
        row_variants = variants[rows, position]
        for code, variant in enumerate(KIND_VARIANTS[spec.kind]):
            selected = row_variants == code
            if not selected.any():
                continue
            template = templates.variants(spec)[variant]
            chosen_fields = {name: field[selected] for name, field in fields.items()}
            text[rows[selected], ranks[selected]] = render(
                template, chosen_fields, int(selected.sum())
            )
            skills[rows[selected], ranks[selected]] = skill_mask(templates.skills(spec, variant))
    return text, skills


def skill_mask(skills: tuple[str, ...]) -> int:
    """Bitmask over SKILLS."""
    return sum(1 << SKILLS.index(skill) for skill in set(skills))


def skills_of_mask(mask: int) -> list[str]:
    """Skills of a bitmask, in contract (SKILLS) order."""
    return [skill for position, skill in enumerate(SKILLS) if mask >> position & 1]


def needs_text(reasons: RowReasons) -> np.ndarray:
    """`needs` per row: the skills of the shown reasons, in contract order, ";"-separated."""
    masks = np.bitwise_or.reduce(reasons.skills, axis=1)
    distinct, inverse = np.unique(masks, return_inverse=True)
    texts = np.array([";".join(skills_of_mask(int(mask))) for mask in distinct], dtype=object)
    return texts[inverse.reshape(-1)]


def join_columns(texts: np.ndarray, present: np.ndarray, separator: str) -> np.ndarray:
    """Per row, the texts of a (rows x columns) array joined by `separator`, where each row's
    present texts come first (as chosen reasons do)."""
    joined = np.where(present[:, 0], texts[:, 0], "").astype(TEXT)
    for column in range(1, texts.shape[1]):
        rows = np.flatnonzero(present[:, column])
        glued = np.strings.add(joined[rows], separator)
        joined[rows] = np.strings.add(glued, texts[rows, column])
    return joined


def joined_text(reasons: RowReasons, *, templates: Templates) -> np.ndarray:
    """All shown reasons of each row joined by the separator, or the "no strong factor" line."""
    joined = join_columns(reasons.text, reasons.group != NO_GROUP, templates.separator)
    return np.where(reasons.count > 0, joined, templates.no_strong_reason).astype(TEXT)


def group_keys_text(reasons: RowReasons) -> np.ndarray:
    """The shown reasons' group keys per row, ";"-separated, best first."""
    keys = np.array([*GROUP_KEYS, ""], dtype=TEXT)[reasons.group]
    return join_columns(keys, reasons.group != NO_GROUP, ";")


def risk_bands(risk: np.ndarray, *, templates: Templates) -> np.ndarray:
    """The band label of each probability (bands by their reviewed lower edges)."""
    position = np.searchsorted(np.array(templates.band_lowers), risk, side="right") - 1
    return np.array(templates.band_labels, dtype=object)[np.clip(position, 0, None)]
