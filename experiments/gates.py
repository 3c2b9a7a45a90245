"""Promotion gates: named checks a challenger must pass before it becomes the champion.

A gate reads the metrics logged with the challenger's run (and the champion's, when there is one)
and says whether it passes and why, in a sentence a manager can read. Gates are a plain tuple so
another check is added by appending to it, not by editing the others. The fairness gate
(experiments.fairness) re-judges the bias audit logged with the run under the council's current
policy, so a policy change needs no retraining; its failures name each group and metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from experiments.fairness import AcceptedFinding, FairnessGate, fairness_promotion_check
from models import TrainSettings

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate for one challenger."""

    name: str
    passed: bool
    message: str
    # Structured reasons when the gate gives them (the fairness gate: attribute, group, metric,
    # ratio, bound, p-value, text), for the promotion audit record.
    failures: tuple[dict[str, object], ...] = field(default=())
    # Failures a council accepted at this promotion (failure | finding, reason, review_by,
    # source), and acceptances that covered nothing (expired, or no such failure).
    accepted: tuple[dict[str, object], ...] = field(default=())
    unused_acceptances: tuple[dict[str, object], ...] = field(default=())


@dataclass(frozen=True)
class Gate:
    """A named check: `check(challenger=, champion=, settings=)` -> (passed, message[, why])."""

    name: str
    check: Callable[..., tuple[bool, str]]


def _missing(metrics: Metrics, *names: str) -> list[str]:
    return [name for name in names if name not in metrics]


def minimum_auc(
    *, challenger: Metrics, champion: Metrics | None, settings: TrainSettings
) -> tuple[bool, str]:
    if missing := _missing(challenger, "holdout_model_auc"):
        return False, f"metric {missing[0]} was not recorded"
    auc = challenger["holdout_model_auc"]
    verdict = ">=" if auc >= settings.min_auc else "<"
    return auc >= settings.min_auc, f"holdout AUC {auc:.4f} {verdict} minimum {settings.min_auc}"


def calibration(
    *, challenger: Metrics, champion: Metrics | None, settings: TrainSettings
) -> tuple[bool, str]:
    if missing := _missing(challenger, "holdout_model_ece"):
        return False, f"metric {missing[0]} was not recorded"
    ece = challenger["holdout_model_ece"]
    verdict = "<=" if ece <= settings.max_ece else ">"
    return (
        ece <= settings.max_ece,
        f"holdout expected calibration error {ece:.4f} {verdict} maximum {settings.max_ece}",
    )


def beats_baselines(
    *, challenger: Metrics, champion: Metrics | None, settings: TrainSettings
) -> tuple[bool, str]:
    names = [f"holdout_{name}_auc" for name in ("model", "logistic", "rule", "prior")]
    if missing := _missing(challenger, *names):
        return False, f"metric {missing[0]} was not recorded"
    model_auc = challenger["holdout_model_auc"]
    beaten = {name: challenger[name] for name in names[1:] if challenger[name] >= model_auc}
    if beaten:
        listed = ", ".join(f"{name.split('_')[1]} {auc:.4f}" for name, auc in beaten.items())
        return False, f"holdout AUC {model_auc:.4f} does not beat {listed}"
    return True, f"holdout AUC {model_auc:.4f} beats the logistic, rule and prior baselines"


def beats_champion(
    *, challenger: Metrics, champion: Metrics | None, settings: TrainSettings
) -> tuple[bool, str]:
    if champion is None:
        return True, "no champion yet"
    metric = f"holdout_model_{settings.promote_metric}"
    if missing := _missing(challenger, metric) or _missing(champion, metric):
        return False, f"metric {missing[0]} was not recorded for both versions"
    needed = champion[metric] + settings.promote_margin
    passed = challenger[metric] >= needed
    return passed, (
        f"holdout {settings.promote_metric} {challenger[metric]:.4f} "
        f"{'>=' if passed else '<'} champion {champion[metric]:.4f} + margin "
        f"{settings.promote_margin}"
    )


def promotion_gates(
    fairness: FairnessGate | None = None,
    *,
    accepted: Sequence[AcceptedFinding] = (),
    today: date | None = None,
) -> tuple[Gate, ...]:
    """The promotion gates, the fairness gate judging with `fairness` (default: the product's).

    `accepted`: fairness findings the council accepts at this promotion (judged on `today`);
    the fairness gate passes only if they cover every failure exactly.
    """
    check = fairness_promotion_check(fairness or FairnessGate(), accepted=accepted, today=today)
    return (
        Gate("minimum_auc", minimum_auc),
        Gate("calibration", calibration),
        Gate("beats_baselines", beats_baselines),
        Gate("beats_champion", beats_champion),
        Gate("fairness", check),
    )


PROMOTION_GATES: tuple[Gate, ...] = promotion_gates()


def evaluate_gates(
    gates: tuple[Gate, ...],
    *,
    challenger: Metrics,
    champion: Metrics | None,
    settings: TrainSettings,
) -> tuple[GateResult, ...]:
    """Run every gate (all of them, so a refusal lists every reason at once)."""
    results = []
    for gate in gates:
        passed, message, *details = gate.check(
            challenger=challenger, champion=champion, settings=settings
        )
        # Optional details, in order: failures, accepted failures, unused acceptances.
        failures, accepted, unused = (
            tuple(dict(item) for item in part) for part in (*details, (), (), ())[:3]
        )
        results.append(GateResult(gate.name, bool(passed), message, failures, accepted, unused))
    return tuple(results)
