"""The reviewed reason templates (reason_templates.toml): loading, checking, filling.

A template file is refused, with the reason, when a group lacks a variant, a template uses an
unknown placeholder or names a skill outside the contract, any text uses a blaming or
protected-characteristic word, or the risk bands do not start at 0 and rise. The skills an event
type's reason points to are not in the file: they are features.needs.EVENT_SKILLS, the one mapping
from records to key-worker needs.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.contract import CLOSE_REASONS, EVENT_TYPES, SKILLS, SOURCES, TENURES
from features.needs import EVENT_SKILLS
from models._phrases import TEXT
from models._reason_groups import GROUPS, KIND_FIELDS, KIND_VARIANTS, Group

TEMPLATES_PATH = Path(__file__).with_name("reason_templates.toml")


@dataclass(frozen=True)
class Templates:
    """The parsed, validated contents of reason_templates.toml."""

    strong_reason_log_odds: float
    max_reasons: int
    separator: str
    no_strong_reason: str
    band_lowers: tuple[float, ...]
    band_labels: tuple[str, ...]
    forbidden: tuple[str, ...]
    protected: tuple[str, ...]
    sections: Mapping[str, Mapping]

    def variants(self, group: Group) -> dict[str, str]:
        """The template of each variant of a group's reason."""
        if group.kind == "arrears":
            return dict(self.sections["arrears"][group.key])
        if group.kind == "incidents":
            return dict(self.sections["incidents"])
        if group.kind == "totals":
            return dict(self.sections["totals"][group.key])
        return dict(self.sections[group.kind])

    def skills(self, group: Group, variant: str) -> tuple[str, ...]:
        """The key-worker skills a reason points to (tenure: per tenure, from the file; an event
        type: features.needs.EVENT_SKILLS; others: none)."""
        if group.kind == "tenure":
            return tuple(self.sections["tenure_skills"].get(variant, ()))
        if group.key in EVENT_TYPES:
            return EVENT_SKILLS[group.key]
        return ()


@functools.cache
def load_templates(path: Path = TEMPLATES_PATH) -> Templates:
    """Read and check the reviewed template file (a bad file is refused with the reason)."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
        templates = _parsed_templates(raw)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: missing or malformed setting {error}") from None
    problems = _template_problems(templates)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return templates


def _parsed_templates(raw: Mapping) -> Templates:
    policy, language, bands = raw["policy"], raw["language"], raw["bands"]
    return Templates(
        strong_reason_log_odds=float(policy["strong_reason_log_odds"]),
        max_reasons=int(policy["max_reasons"]),
        separator=str(policy["reason_separator"]),
        no_strong_reason=str(policy["no_strong_reason"]),
        band_lowers=tuple(float(band["lower"]) for band in bands),
        band_labels=tuple(str(band["label"]) for band in bands),
        forbidden=tuple(language["forbidden"]),
        protected=tuple(language["protected"]),
        sections={key: value for key, value in raw.items() if key != "language"},
    )


def _template_problems(templates: Templates) -> list[str]:
    problems = _structure_problems(templates)
    if problems:
        return problems
    for group in GROUPS:
        for variant in KIND_VARIANTS[group.kind]:
            template = templates.variants(group).get(variant)
            if template is None:
                problems.append(f"{group.key}: template {variant!r} is missing")
                continue
            unknown = set(template_fields(template)) - KIND_FIELDS[group.kind]
            if unknown:
                problems.append(f"{group.key}.{variant}: unknown fields {sorted(unknown)}")
            bad_skills = set(templates.skills(group, variant)) - set(SKILLS)
            if bad_skills:
                problems.append(f"{group.key}: skills outside the contract {sorted(bad_skills)}")
    for text in _all_texts(templates.sections):
        for word in blocked_words(text, templates=templates):
            problems.append(f"template {text!r} uses the word {word!r}")
    lowers = templates.band_lowers
    if not lowers or lowers[0] != 0.0 or list(lowers) != sorted(set(lowers)):
        problems.append("bands must start at 0 and rise")
    return problems


def _structure_problems(templates: Templates) -> list[str]:
    sections = templates.sections
    expected = {
        "events": set(EVENT_TYPES),
        "agency_names": set(SOURCES),
        "tenure": set(TENURES),
        "close_reasons": set(CLOSE_REASONS),
    }
    problems = [
        f"[{name}] must have exactly the keys {sorted(keys)}"
        for name, keys in expected.items()
        if set(sections.get(name, {})) != keys
    ]
    for group in GROUPS:
        entry = sections.get("events", {}).get(group.key, {})
        if group.key in EVENT_TYPES and "record" not in entry:
            problems.append(f"[events.{group.key}] needs record")
        if "skills" in entry:
            problems.append(
                f"[events.{group.key}] skills: the skills of records are set in features/needs.py"
            )
        if group.kind == "incidents" and not {"one", "many"} <= set(entry):
            problems.append(f"[events.{group.key}] needs one and many")
    return problems


def _all_texts(section) -> list[str]:
    if isinstance(section, str):
        return [section]
    if isinstance(section, Mapping):
        return [text for value in section.values() for text in _all_texts(value)]
    if isinstance(section, list):
        return [text for value in section for text in _all_texts(value)]
    return []


def blocked_words(text: str, *, templates: Templates | None = None) -> list[str]:
    """Forbidden (blaming) or protected-characteristic words a text uses, as whole words."""
    templates = templates or load_templates()
    lowered = text.lower()
    return [
        word
        for word in (*templates.forbidden, *templates.protected)
        if re.search(rf"(?<![a-z]){re.escape(word.lower())}(?![a-z])", lowered)
    ]


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def render(template: str, fields: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    """A template filled for `count` rows from already formatted field strings (vectorised)."""
    text = np.full(count, "", dtype=TEXT)
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            text = np.strings.add(text, literal)
        if field:
            text = np.strings.add(text, fields[field])
    return text
