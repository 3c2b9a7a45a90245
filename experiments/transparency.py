"""Governance records: the model card / transparency record of a champion, and manager overrides.

`transparency_record` writes, for each champion model, a Markdown record in the shape of the UK
Algorithmic Transparency Recording Standard (ATRS): a short public summary (tier 1) and the detail
(tier 2: owner, rationale, decision process and human oversight, model card, data, risks, and how
a resident asks for a correction). It is built only from what the training run measured, so the
record states what the model does on this council's data, not what it was hoped to do.

`override_record` is what the service stores every time a manager decides on a proposal: the risk
and reasons that were on screen, what the tool proposed and what the manager chose.
`summarise_overrides` turns those records into override and agreement rates by locality and risk
band, so the effect of the tool on decisions can be evaluated.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from experiments.fairness import (
    FairnessGate,
    GateResult,
    fairness_gate,
    gated_rows,
)
from features.contract import CRISIS_EVENT_TYPES, SOURCES, TABLE_NAMES

# Shown-risk bands (lower edges): the bands managers see next to the score.
RISK_BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "low"),
    (0.05, "medium"),
    (0.15, "high"),
    (0.30, "very high"),
)
DECISIONS: tuple[str, ...] = ("accepted", "changed_worker", "not_allocated", "added")
OVERRIDE_FIELDS: tuple[str, ...] = (
    "recorded_at",
    "household_id",
    "locality",
    "model_version",
    "shown_risk",
    "risk_band",
    "shown_reasons",
    "proposed_worker",
    "chosen_worker",
    "decision",
    "overridden",
    "reason",
    "manager",
)
SCORERS: dict[str, str] = {
    "model": "Escalation model",
    "logistic": "Logistic regression",
    "rule": "Problem-indicator count",
    "prior": "Overall rate (no ranking)",
}
PERFORMANCE_METRICS: dict[str, str] = {
    "auc": "AUC (ranking, 0.5 = chance)",
    "average_precision": "Average precision",
    "precision_at_capacity": "Precision at capacity k",
    "recall_at_capacity": "Recall at capacity k",
    "k_at_capacity": "Capacity k (households)",
    "brier": "Brier score (lower is better)",
    "ece": "Expected calibration error",
    "escalation_rate": "Observed escalation rate",
    "mean_risk": "Mean predicted risk",
}
_TOP_FRACTION = re.compile(r"^(precision|recall)_at_top([\d.]+)pct$")


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


# --- the record -------------------------------------------------------------------------------


def transparency_record(
    *,
    model_version: str,
    metrics: Mapping[str, float],
    audit: pd.DataFrame,
    settings,
    gate: GateResult | None = None,
    gate_settings: FairnessGate | None = None,
    data_summary: Mapping[str, object] | None = None,
    service: ServiceDetails | None = None,
) -> str:
    """The champion's model card and ATRS-style record, as Markdown.

    metrics: flat run metrics (`model_auc`, `holdout_model_recall_at_capacity`, `logistic_auc`,
    ...); audit: the bias audit table; settings: the training settings (a dataclass or mapping);
    gate: the fairness verdict (computed from the audit with `gate_settings` when not given).
    """
    gate_settings = gate_settings or FairnessGate()
    gate = gate or fairness_gate(audit, settings=gate_settings)
    training = _as_mapping(settings)
    summary = dict(data_summary or {})
    service = service or ServiceDetails()
    sections = [
        _title(model_version, summary=summary),
        _tier_one(service, training=training),
        _owner(service),
        _rationale(training, metrics=metrics),
        _human_oversight(summary),
        _model_card(model_version, training=training, summary=summary),
        _performance(metrics),
        _fairness(audit, gate=gate, gate_settings=gate_settings),
        _data(training),
        _risks(service),
        _corrections(service),
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _title(model_version: str, *, summary: Mapping[str, object]) -> str:
    as_of = summary.get("evaluation_as_of", "not recorded")
    return f"""
# Algorithmic transparency record: Rebalance household escalation model, version {model_version}

Generated from the training run of this model version (data as of {as_of}). Every figure below
was measured on the council's own records; nothing is copied from elsewhere. Sections follow the
UK Algorithmic Transparency Recording Standard (tier 1 summary, tier 2 detail) and include the
model card.
"""


def _tier_one(service: ServiceDetails, *, training: Mapping[str, object]) -> str:
    horizon = training.get("horizon_weeks", 26)
    description = (
        "Partner agencies share pseudonymised records about households. A statistical model "
        "estimates each household's chance of a crisis (such as a possession order, an emergency "
        f"admission or a child protection plan) in the next {horizon} weeks, with the main "
        "reasons. Each week the tool proposes which households the early help key workers could "
        "contact first and who could support them. A locality manager decides; the proposal is "
        "advice."
    )
    rows = [
        ("Name", "Rebalance: household risk prioritisation and key-worker allocation"),
        ("Description", description),
        ("Organisation", service.organisation),
        ("Team", service.team),
        ("Website", service.website),
        ("Contact", service.contact_email),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"## Tier 1: summary\n\n| | |\n|---|---|\n{table}"


def _owner(service: ServiceDetails) -> str:
    return f"""
## 1. Owner and responsibility

- Organisation and team: {service.organisation}; {service.team}.
- Senior responsible owner: {service.senior_responsible_owner}.
- Built and maintained by the council's data team from open-source components (LightGBM,
  scikit-learn, OR-Tools); no external supplier holds the data or the model.
- Data protection impact assessment: {service.dpia_reference}.
- Equality impact assessment: {service.equality_assessment_reference}.
"""


def _rationale(training: Mapping[str, object], *, metrics: Mapping[str, float]) -> str:
    crisis = ", ".join(str(name).replace("_", " ") for name in _crisis_types(training))
    comparison = _baseline_sentence(metrics)
    return f"""
## 2. Description and rationale

Early help works best before a household reaches crisis, but the signs are spread across many
agencies and no single worker sees them all. The tool brings the shared records together and ranks
households by their estimated chance of escalation: at least one of these recorded crises within
{training.get("horizon_weeks", 26)} weeks: {crisis}.

Alternatives considered and measured on the same data: a count of problem indicators (the
Troubled Families approach), a logistic regression, and no ranking at all.

{comparison}

Scope: households in the partners' shared extract. It is not used to decide eligibility for any
service, for enforcement, for child protection decisions or for any sanction.
"""


def _baseline_sentence(metrics: Mapping[str, float]) -> str:
    scorers = ("model", "rule", "logistic")
    lines = []
    for metric, meaning in (
        ("precision", "share of them that went on to a crisis"),
        ("recall", "share of all crises found among them"),
    ):
        values = [(SCORERS[name], metrics.get(f"{name}_{metric}_at_capacity")) for name in scorers]
        known = [(name, value) for name, value in values if _is_number(value)]
        if len(known) >= 2:
            lines.append(f"- {meaning}: " + "; ".join(f"{n} {v:.1%}" for n, v in known))
    if not lines:
        return "The comparison was not recorded for this run."
    intro = (
        "For the households the key workers can take each week (capacity k, averaged over the "
        "test dates):"
    )
    return "\n".join([intro, "", *lines])


def _human_oversight(summary: Mapping[str, object]) -> str:
    households = _count_text(summary.get("households"), default="every")
    return f"""
## 3. Decision-making process and human oversight

- Weekly, the tool scores {households} households and proposes allocations within each key
  worker's capacity, skills and locality. The proposal is advice: a locality manager reviews it
  and accepts, changes or declines each allocation, and may add households the tool did not
  propose. No decision about a household is made by the tool alone.
- The manager sees, for each proposed household, the estimated risk, its band and the three main
  reasons in plain words (from the model's SHAP contributions), and the proposed key worker.
- Every decision that differs from the proposal is recorded with the risk and reasons that were
  shown, the proposed and chosen worker, the manager and a reason. Override and agreement rates
  by locality and risk band are reviewed monthly, to see whether the tool is followed blindly or
  ignored and where it is wrong.
- Key workers make the first contact; support is voluntary and ends only when the household
  agrees its problems are resolved or no further progress is possible.
- Managers are trained on what the score means (a chance, not a judgement), on the reasons, on
  the known limits below and on recording overrides.
"""


def _model_card(
    model_version: str, *, training: Mapping[str, object], summary: Mapping[str, object]
) -> str:
    rows = [
        ("Version", model_version),
        ("Type", "Gradient-boosted decision trees (LightGBM), probability calibration"),
        ("Calibration", summary.get("calibration_method", "not recorded")),
        ("Features", _count_text(summary.get("features"))),
        ("Trees", _count_text(summary.get("trees"))),
        ("Label", f"any recorded crisis within {training.get('horizon_weeks', 26)} weeks"),
        ("Validation", _validation_text(training)),
        ("Data as of", summary.get("evaluation_as_of", "not recorded")),
        ("Records used", _count_text(summary.get("events"))),
        ("Random seed", training.get("seed", "not recorded")),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"""
## 4. Model card

| | |
|---|---|
{table}

Intended use: ordering the weekly early help offer within the capacity the locality teams have.
Out of scope: eligibility, enforcement, safeguarding thresholds, any decision about an individual.
Features describe recent agency contact, arrears, school absence, household composition, tenure
and case history as known on the scoring date. Protected characteristics (sex, ethnicity,
disability, age) are never features; the training code refuses any feature named after one.
"""


def _validation_text(training: Mapping[str, object]) -> str:
    folds, step = training.get("folds"), training.get("step_weeks")
    if folds is None or step is None:
        return "temporal hold-out"
    return (
        f"rolling-origin: {folds} test dates {step} weeks apart, each scored by a model trained "
        "only on records shared before it"
    )


def _performance(metrics: Mapping[str, float]) -> str:
    names = [*PERFORMANCE_METRICS, *_top_fraction_metrics(metrics)]
    header = (
        "| Metric | " + " | ".join(SCORERS.values()) + " | Escalation model, latest test date |"
    )
    lines = [header, "|---" * (len(SCORERS) + 2) + "|"]
    for name in names:
        values = [metrics.get(f"{scorer}_{name}") for scorer in SCORERS]
        latest = metrics.get(f"holdout_model_{name}")
        if not any(_is_number(value) for value in [*values, latest]):
            continue
        cells = [_format_metric(name, value) for value in [*values, latest]]
        lines.append(f"| {_metric_label(name)} | " + " | ".join(cells) + " |")
    return "## 5. Performance\n\n" + "\n".join([*lines, "", _truth_sentence(metrics)])


def _top_fraction_metrics(metrics: Mapping[str, float]) -> list[str]:
    found = {
        match.group(0)
        for key in metrics
        if (match := _TOP_FRACTION.match(key.removeprefix("holdout_").removeprefix("model_")))
    }
    return sorted(found, key=lambda name: (float(_TOP_FRACTION.match(name).group(2)), name))


def _metric_label(name: str) -> str:
    if name in PERFORMANCE_METRICS:
        return PERFORMANCE_METRICS[name]
    kind, fraction = _TOP_FRACTION.match(name).groups()
    return f"{kind.capitalize()} in the top {fraction}%"


def _format_metric(name: str, value) -> str:
    if not _is_number(value):
        return "-"
    return f"{value:,.0f}" if name == "k_at_capacity" else f"{value:.3f}"


def _truth_sentence(metrics: Mapping[str, float]) -> str:
    ratio = metrics.get("truth_model_auc_ratio_to_truth")
    text = (
        "Figures are over every test date unless marked latest; list figures are averages over "
        "the test dates. Capacity k is the number of households the active key workers could take "
        "on at the test date."
    )
    if _is_number(ratio):
        text += (
            f" On the synthetic city, where each household's true chance is known, the model "
            f"reaches {ratio:.1%} of the AUC of the true risk."
        )
    return text


def _fairness(audit: pd.DataFrame, *, gate: GateResult, gate_settings: FairnessGate) -> str:
    verdict = "passed" if gate.passed else "FAILED"
    confidence = _confidence_text(gate_settings)
    k = f"{int(audit['k'].iloc[0]):,}" if "k" in audit and len(audit) else "k"
    return f"""
## 6. Fairness

Bias audit on the latest test date, selecting the top {k} households (ties broken by household
id). Missing a household in need is the main harm of an assistive service, so the gate compares
each group's false negative rate and recall at k with its reference group (the largest known
group): ratios must lie within {gate_settings.min_ratio:.2f}-{gate_settings.max_ratio:.2f} for
every group with at least {gate_settings.min_households} households and
{gate_settings.min_positives} escalations. Smaller groups are shown but not gated.{confidence}

Fairness gate: **{verdict}**. {gate.message}

{_audit_table(audit, gate_settings=gate_settings)}

Household groups: sex, ethnicity and age band are those of the oldest adult; disability is "yes"
when any member is recorded disabled; "unknown" where partners did not record it. The audit
compares the model with recorded crises; a group whose crises are under-recorded can look better
served than it is (see docs/fairness.md).
"""


def _confidence_text(gate_settings: FairnessGate) -> str:
    if gate_settings.confidence is None:
        return ""
    return (
        f" A ratio outside the bounds counts only when the gap to the reference group is "
        f"significant at {gate_settings.confidence:.0%} confidence (two-proportion test)."
    )


def _audit_table(audit: pd.DataFrame, *, gate_settings: FairnessGate) -> str:
    gated = gated_rows(audit, settings=gate_settings)
    lines = [
        "| Attribute | Group | Households | Escalated | Selected | Recall at k | "
        "Recall ratio | FNR ratio | Mean predicted | Observed | Gated |",
        "|---" * 11 + "|",
    ]
    for index, row in audit.iterrows():
        group = f"{row['group']} (reference)" if row["is_reference"] else row["group"]
        cells = [
            row["attribute"],
            group,
            f"{int(row['households']):,}",
            f"{int(row['positives']):,}",
            f"{int(row['selected']):,}",
            _percent(row["recall_at_k"]),
            _ratio_text(row["recall_at_k_ratio"]),
            _ratio_text(row["false_negative_rate_ratio"]),
            _percent(row["mean_predicted"]),
            _percent(row["base_rate"]),
            "yes" if gated.loc[index] else "no (small)",
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _data(training: Mapping[str, object]) -> str:
    sources = ", ".join(source.replace("_", " ") for source in SOURCES)
    return f"""
## 7. Data

- Source: pseudonymised extracts shared under the partners' information sharing agreement, one
  household key across agencies: {sources}. Tables: {", ".join(TABLE_NAMES)}.
- Only records a partner had shared by the scoring date are used (a record's known-at date), so
  the model is trained and tested exactly as it is used.
- Protected characteristics are held in the people table only to audit fairness (section 6).
- Labels come from the same records: a crisis that no agency recorded is invisible to the model
  and to its evaluation.
- Training settings: {_settings_text(training)}.
"""


def _settings_text(training: Mapping[str, object]) -> str:
    shown = ("horizon_weeks", "step_weeks", "folds", "history_dates", "n_estimators", "seed")
    parts = [f"{name} = {training[name]}" for name in shown if name in training]
    return "; ".join(parts) if parts else "not recorded"


def _risks(service: ServiceDetails) -> str:
    risks = [
        (
            "A group's problems are under-recorded by an agency, so its households score lower "
            "and are missed",
            "Bias audit and fairness gate on every model; the under-reporting study "
            "(docs/fairness.md) shows the audit detects it; group-aware cut-offs at allocation "
            "as mitigation; the data quality issue is raised with the partner",
        ),
        (
            "Staff follow the score without judgement (automation bias), or ignore it",
            "The proposal is advice; every override is recorded with what was shown; override "
            "and agreement rates are reviewed monthly",
        ),
        (
            "Households who already have help score lower because help works (feedback loop)",
            "Case history is a feature; the model is retrained and re-audited; performance is "
            "measured on every new test date",
        ),
        (
            "Errors in partner records",
            "The data contract refuses a broken extract; residents can ask for a correction "
            "(section 9)",
        ),
        (
            "Re-identification of pseudonymised records",
            "Access limited to the early help team; no personal data in logs; see "
            f"{service.dpia_reference}",
        ),
    ]
    table = "\n".join(f"| {risk} | {mitigation} |" for risk, mitigation in risks)
    return f"## 8. Risks and mitigations\n\n| Risk | Mitigation |\n|---|---|\n{table}"


def _corrections(service: ServiceDetails) -> str:
    return f"""
## 9. How a resident can ask for a correction

1. Anyone can ask what is held about their household and why they were contacted: contact
   {service.contact_email} or the council's data protection officer at
   {service.data_protection_email} (a subject access request).
2. If a record is wrong, the resident can ask for it to be corrected (UK GDPR article 16). The
   early help team passes the request to the agency that holds the record; the correction
   reaches Rebalance with the next extract, and the household's score is recalculated then.
3. Until then, the locality manager can set the proposal aside and records why.
4. A resident can object to the processing (article 21) or complain to the council and then to
   the Information Commissioner's Office. Early help is voluntary: declining it has no
   consequence for any other service.
"""


# --- overrides --------------------------------------------------------------------------------


def override_record(
    *,
    household_id: str,
    shown_risk: float,
    shown_reasons: Sequence[str],
    proposed_worker: str | None,
    chosen_worker: str | None,
    decision: str,
    reason: str,
    manager: str,
    locality: str | None = None,
    model_version: str | None = None,
    recorded_at: datetime | str | None = None,
) -> dict[str, object]:
    """A manager's decision on one household, with what the tool showed; JSON-ready.

    decision: "accepted" (the proposed worker), "changed_worker" (another worker),
    "not_allocated" (a proposed household not allocated) or "added" (a household the tool did
    not propose). A reason is required for everything but "accepted".
    """
    _check_override(
        household_id=household_id,
        shown_risk=shown_risk,
        proposed_worker=proposed_worker,
        chosen_worker=chosen_worker,
        decision=decision,
        reason=reason,
        manager=manager,
    )
    when = recorded_at or datetime.now(UTC).replace(microsecond=0)
    values = {
        "recorded_at": when.isoformat() if isinstance(when, datetime) else str(when),
        "household_id": str(household_id),
        "locality": None if locality is None else str(locality),
        "model_version": None if model_version is None else str(model_version),
        "shown_risk": float(shown_risk),
        "risk_band": risk_band(float(shown_risk)),
        "shown_reasons": [str(text) for text in shown_reasons],
        "proposed_worker": proposed_worker,
        "chosen_worker": chosen_worker,
        "decision": decision,
        "overridden": decision != "accepted",
        "reason": (reason or "").strip(),
        "manager": str(manager),
    }
    return {name: values[name] for name in OVERRIDE_FIELDS}


def _check_override(
    *, household_id, shown_risk, proposed_worker, chosen_worker, decision, reason, manager
) -> None:
    if not household_id or not manager:
        raise ValueError("override record: household_id and manager are required")
    if not (_is_number(shown_risk) and 0.0 <= float(shown_risk) <= 1.0):
        raise ValueError(f"override record: shown_risk must be a probability, not {shown_risk!r}")
    if decision not in DECISIONS:
        raise ValueError(f"override record: decision must be one of {DECISIONS}, not {decision!r}")
    expected = {
        "accepted": proposed_worker is not None and chosen_worker == proposed_worker,
        "changed_worker": None not in (proposed_worker, chosen_worker)
        and chosen_worker != proposed_worker,
        "not_allocated": proposed_worker is not None and chosen_worker is None,
        "added": proposed_worker is None and chosen_worker is not None,
    }[decision]
    if not expected:
        raise ValueError(
            f"override record: decision {decision!r} does not match proposed worker "
            f"{proposed_worker!r} and chosen worker {chosen_worker!r}"
        )
    if decision != "accepted" and not (reason or "").strip():
        raise ValueError(f"override record: a reason is required when the decision is {decision}")


def risk_band(shown_risk: float, *, bands: Sequence[tuple[float, str]] = RISK_BANDS) -> str:
    """The band of a shown risk: the last band whose lower edge it reaches."""
    edges = [edge for edge, _ in bands]
    return bands[max(0, int(np.searchsorted(edges, shown_risk, side="right")) - 1)][1]


def summarise_overrides(
    overrides: pd.DataFrame, *, bands: Sequence[tuple[float, str]] = RISK_BANDS
) -> pd.DataFrame:
    """Override and agreement rates overall, by locality, by risk band and by manager.

    One row per (dimension, group): decisions, proposed (decisions on proposed households),
    accepted, changed_worker, not_allocated, added, override_rate (share of decisions that
    differ from the proposal) and agreement_rate (share of proposals accepted as proposed).
    """
    required = ("shown_risk", "decision", "locality", "manager")
    missing = [column for column in required if column not in overrides.columns]
    if missing:
        raise ValueError(f"overrides: missing column(s) {', '.join(missing)}")
    unknown = sorted(set(overrides["decision"].dropna()) - set(DECISIONS))
    if unknown or overrides["decision"].isna().any():
        raise ValueError(f"overrides: decision must be one of {DECISIONS}; found {unknown}")
    labelled = overrides.assign(
        all="all",
        locality=overrides["locality"].fillna("unknown").astype("str"),
        risk_band=[risk_band(float(value), bands=bands) for value in overrides["shown_risk"]],
        manager=overrides["manager"].astype("str"),
    )
    band_order = {name: position for position, (_, name) in enumerate(bands)}
    frames = [
        _override_rates(labelled, dimension=dimension, order=order)
        for dimension, order in (
            ("all", None),
            ("locality", None),
            ("risk_band", band_order),
            ("manager", None),
        )
    ]
    return pd.concat(frames, ignore_index=True)


def _override_rates(
    labelled: pd.DataFrame, *, dimension: str, order: Mapping[str, int] | None
) -> pd.DataFrame:
    counts = pd.crosstab(labelled[dimension], labelled["decision"]).reindex(
        columns=list(DECISIONS), fill_value=0
    )
    decisions = counts.sum(axis=1)
    proposed = decisions - counts["added"]
    table = counts.assign(
        decisions=decisions,
        proposed=proposed,
        override_rate=(decisions - counts["accepted"]) / decisions,
        agreement_rate=counts["accepted"] / proposed.where(proposed > 0),
    )
    table = table.rename_axis("group").reset_index().assign(dimension=dimension)
    if order is not None:
        table = table.sort_values("group", key=lambda names: names.map(order), ignore_index=True)
    columns = ["dimension", "group", "decisions", "proposed", *DECISIONS]
    return table[[*columns, "override_rate", "agreement_rate"]]


# --- helpers ----------------------------------------------------------------------------------


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


def _percent(value) -> str:
    return f"{value:.1%}" if _is_number(value) else "-"


def _ratio_text(value) -> str:
    if not _is_number(value):
        return "inf" if value == np.inf else "-"
    return f"{value:.2f}"


__all__ = [
    "DECISIONS",
    "RISK_BANDS",
    "ServiceDetails",
    "override_record",
    "risk_band",
    "summarise_overrides",
    "transparency_record",
]
