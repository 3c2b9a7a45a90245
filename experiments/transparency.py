"""The transparency record of a champion model, in the shape of the UK Algorithmic Transparency
Recording Standard (ATRS).

`transparency_record` writes, for each champion model, a Markdown record: a short public summary
(tier 1) and the detail (tier 2: owner, rationale, decision process and human oversight, model
card, data, risks, and how a resident asks for a correction). It embeds the training run's model
card (experiments.model_card: performance, validation, fairness audit, limitations) instead of
restating it, and adds the promotion gates' verdicts, so every figure is what the run measured on
this council's data. Written at every promotion into REBALANCE_HOME (experiments.promotion) and
logged to the run. The text is the template experiments/templates/transparency_record.md.j2.
Manager overrides: experiments.overrides.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from experiments.markdown import render
from experiments.model_card import accepted_findings_section
from features.contract import CRISIS_EVENT_TYPES, SOURCES, TABLE_NAMES

SCORERS: dict[str, str] = {
    "model": "Escalation model",
    "logistic": "Logistic regression",
    "rule": "Problem-indicator count",
}
# What the baselines are compared on in section 2, and what each figure means.
_COMPARED: tuple[tuple[str, str], ...] = (
    ("precision", "share of them that went on to a crisis"),
    ("recall", "share of all crises found among them"),
)


@dataclass(frozen=True)
class ServiceDetails:
    """Who runs the service and how residents reach it: the council's own facts, configurable."""

    organisation: str = "Stoke-on-Trent City Council (demonstration record)"
    team: str = "Co-operative Working: Early Help locality teams"
    senior_responsible_owner: str = "Head of Early Help"
    contact_email: str = "earlyhelp@example.gov.uk"
    data_protection_email: str = "dpo@example.gov.uk"
    website: str = "https://www.example.gov.uk/early-help"
    dpia_reference: str = "DPIA reference to be entered by the council"
    equality_assessment_reference: str = "Equality impact assessment reference to be entered"


def transparency_record(
    *,
    model_version: str,
    model_card: str,
    metrics: Mapping[str, float],
    settings,
    promotion: Sequence[Mapping[str, object]] = (),
    data_summary: Mapping[str, object] | None = None,
    service: ServiceDetails | None = None,
    accepted_findings: Sequence[Mapping[str, object]] = (),
) -> str:
    """The champion's Algorithmic Transparency Recording Standard (ATRS) record, as Markdown.

    model_card: the training run's model card (experiments.model_card; it carries performance,
    validation, the fairness audit and limitations), embedded as section 4 rather than restated;
    metrics: the run's flat metrics (`model_precision_at_capacity`, ...); settings: the training
    settings (a dataclass or mapping); promotion: the promotion gates' results (name, passed,
    message), fairness included; accepted_findings: the fairness findings the council accepted
    to promote it (figures, reason, who, when, review date), listed under the promotion.
    """
    training = _as_mapping(settings)
    summary = dict(data_summary or {})
    return render(
        "transparency_record.md.j2",
        model_version=model_version,
        as_of=summary.get("evaluation_as_of", "not recorded"),
        horizon=training.get("horizon_weeks", 26),
        service=service or ServiceDetails(),
        crisis=", ".join(str(name).replace("_", " ") for name in _crisis_types(training)),
        comparison=_baseline_comparison(metrics),
        households=_count_text(summary.get("households"), default="every"),
        card_body=_card_body(model_card),
        promotion=list(promotion),
        accepted_section=accepted_findings_section(accepted_findings, heading="###").strip(),
        sources=", ".join(source.replace("_", " ") for source in SOURCES),
        tables=", ".join(TABLE_NAMES),
        settings_text=_settings_text(training),
    )


def _card_body(model_card: str) -> str:
    """The run's model card without its title, one heading level down (section 4's body)."""
    lines = model_card.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    demoted = [f"#{line}" if re.match(r"^#{2,5} ", line) else line for line in lines]
    return "\n".join(demoted).strip()


def _baseline_comparison(metrics: Mapping[str, float]) -> list[tuple[str, list[tuple]]]:
    """Per compared figure with two or more scorers recorded: its meaning and (scorer, value)."""
    comparison = []
    for metric, meaning in _COMPARED:
        values = [
            (SCORERS[name], metrics.get(f"{name}_{metric}_at_capacity"))
            for name in ("model", "rule", "logistic")
        ]
        known = [(name, value) for name, value in values if _is_number(value)]
        if len(known) >= 2:
            comparison.append((meaning, known))
    return comparison


def _settings_text(training: Mapping[str, object]) -> str:
    shown = ("horizon_weeks", "step_weeks", "folds", "history_dates", "n_estimators", "seed")
    parts = [f"{name} = {training[name]}" for name in shown if name in training]
    return "; ".join(parts) if parts else "not recorded"


def _as_mapping(settings) -> dict[str, object]:
    if settings is None:
        return {}
    if dataclasses.is_dataclass(settings):
        return dataclasses.asdict(settings)
    return dict(settings)


def _crisis_types(training: Mapping[str, object]) -> tuple[str, ...]:
    crisis = training.get("crisis_types", CRISIS_EVENT_TYPES)
    if isinstance(crisis, str):
        return tuple(name for name in crisis.split(",") if name)
    return tuple(crisis)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def _count_text(value, *, default: str = "not recorded") -> str:
    if _is_number(value):
        return f"{value:,.0f}"
    return default if value is None else str(value)
