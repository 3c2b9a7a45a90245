"""Governance records: the model card / transparency record of a champion, and manager overrides.

`transparency_record` writes, for each champion model, a Markdown record in the shape of the UK
Algorithmic Transparency Recording Standard (ATRS): a short public summary (tier 1) and the detail
(tier 2: owner, rationale, decision process and human oversight, model card, data, risks, and how
a resident asks for a correction). It embeds the training run's model card (experiments.model_card:
performance, validation, fairness audit, limitations) instead of restating it, and adds the
promotion gates' verdicts, so every figure is what the run measured on this council's data.
Written at every promotion into REBALANCE_HOME (models._registry) and logged to the run.

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

from experiments.model_card import accepted_findings_section
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
}


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
    service = service or ServiceDetails()
    sections = [
        _title(model_version, summary=summary),
        _tier_one(service, training=training),
        _owner(service),
        _rationale(training, metrics=metrics),
        _human_oversight(summary),
        _embedded_card(model_card),
        _promotion(promotion, accepted_findings=accepted_findings),
        _data(training),
        _risks(service),
        _corrections(service),
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _embedded_card(model_card: str) -> str:
    """The run's model card one heading level down, under section 4."""
    lines = model_card.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    demoted = [f"#{line}" if re.match(r"^#{2,5} ", line) else line for line in lines]
    body = "\n".join(demoted).strip()
    return f"## 4. Model card: performance, fairness and limitations\n\n{body}"


def _promotion(
    promotion: Sequence[Mapping[str, object]],
    *,
    accepted_findings: Sequence[Mapping[str, object]] = (),
) -> str:
    if not promotion:
        return "## 5. Promotion\n\nNo promotion decision was recorded for this version."
    rows = [
        f"| {gate['name']} | {'passed' if gate['passed'] else 'FAILED'} | {gate['message']} |"
        for gate in promotion
    ]
    return "\n".join(
        [
            "## 5. Promotion",
            "",
            "A version becomes the champion only if every gate passes; the fairness gate uses the "
            "council's policy at the time of promotion (rebalance.toml [fairness]).",
            "",
            "| Gate | Verdict | Detail |",
            "|---|---|---|",
            *rows,
            "",
            accepted_findings_section(accepted_findings, heading="###"),
        ]
    )


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


def _data(training: Mapping[str, object]) -> str:
    sources = ", ".join(source.replace("_", " ") for source in SOURCES)
    return f"""
## 6. Data

- Source: pseudonymised extracts shared under the partners' information sharing agreement, one
  household key across agencies: {sources}. Tables: {", ".join(TABLE_NAMES)}.
- Only records a partner had shared by the scoring date are used (a record's known-at date), so
  the model is trained and tested exactly as it is used.
- Protected characteristics are held in the people table only to audit fairness (section 4).
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
            "Bias audit on every training run and a fairness gate at promotion (calibration by "
            "group detects under-recording: docs/fairness.md); reweighting in training and "
            "group-aware cut-offs at allocation as mitigations; the data quality issue is "
            "raised with the partner",
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
            "(section 8)",
        ),
        (
            "Re-identification of pseudonymised records",
            "Access limited to the early help team; no personal data in logs; see "
            f"{service.dpia_reference}",
        ),
    ]
    table = "\n".join(f"| {risk} | {mitigation} |" for risk, mitigation in risks)
    return f"## 7. Risks and mitigations\n\n| Risk | Mitigation |\n|---|---|\n{table}"


def _corrections(service: ServiceDetails) -> str:
    return f"""
## 8. How a resident can ask for a correction

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
    shown_band: str | None = None,
) -> dict[str, object]:
    """A manager's decision on one household, with what the tool showed; JSON-ready.

    decision: "accepted" (the proposed worker), "changed_worker" (another worker),
    "not_allocated" (a proposed household not allocated) or "added" (a household the tool did
    not propose). A reason is required for everything but "accepted". shown_band: the band the
    screen showed (default: the band of shown_risk with RISK_BANDS).
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
        "risk_band": shown_band or risk_band(float(shown_risk)),
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


__all__ = [
    "DECISIONS",
    "RISK_BANDS",
    "ServiceDetails",
    "override_record",
    "risk_band",
    "summarise_overrides",
    "transparency_record",
]
