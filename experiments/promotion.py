"""Promotion: the challenger becomes the champion only if it passes every gate.

- `promote` moves `champion` to the challenger only if every gate passes (experiments.gates), the
  fairness gate with the council's policy; each decision (and each refusal) is appended to
  `<home>/audit/promotions.jsonl`. A new champion gets its model card and Algorithmic
  Transparency Recording Standard record in `<home>/governance/` (and in its run).
- A council may accept specific fairness findings at promotion (`accepted`: each names one
  attribute, group and metric, with a reason and a review date); the fairness gate then passes
  only if they cover every failure. Accepted findings are recorded with who and when in the
  audit log, the version's tags, the model card and the transparency record.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from experiments import tracking
from experiments.fairness import AcceptedFinding, FairnessGate
from experiments.gates import Gate, GateResult, evaluate_gates, promotion_gates
from experiments.model_card import accepted_findings_section
from experiments.transparency import transparency_record
from models import TrainSettings

AUDIT_FILE = Path("audit") / "promotions.jsonl"
GOVERNANCE_DIR = Path("governance")
CURRENT_RECORD = "transparency-record.md"
# The fairness findings accepted at a champion's promotion ([] when none), beside its record.
ACCEPTED_FILE = "accepted_findings.json"


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of one promotion attempt (also the audit record)."""

    promoted: bool
    model_name: str
    challenger_version: str | None
    champion_before: str | None
    champion_after: str | None
    gates: tuple[GateResult, ...]
    message: str
    decided_at: str
    decided_by: str
    fairness_policy: dict[str, object] | None = None
    records: tuple[str, ...] = ()
    # Fairness failures the council accepted for this promotion: the failure's figures with
    # finding, reason, review_by, source, accepted_by and accepted_at (empty unless promoted).
    accepted_findings: tuple[dict[str, object], ...] = ()
    # Acceptances given that covered nothing (expired, or no such failure), so they are noticed.
    unused_acceptances: tuple[dict[str, object], ...] = ()

    @property
    def fairness(self) -> GateResult | None:
        """The fairness gate's verdict, when it was run."""
        return next((gate for gate in self.gates if gate.name == "fairness"), None)

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(gate.name for gate in self.gates if not gate.passed)

    def to_record(self) -> dict[str, object]:
        return asdict(self) | {"decision": "promoted" if self.promoted else "refused"}


def append_audit_record(home: str | Path, record: Mapping[str, object]) -> Path:
    """Append one JSON line to the promotions audit log (created on first use)."""
    path = Path(home) / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    # O_APPEND writes a whole line at the end even when two processes promote at once.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path


def _decide(
    *,
    uri: str,
    settings: TrainSettings,
    gates: tuple[Gate, ...],
    challenger: tracking.RegisteredVersion,
    champion: tracking.RegisteredVersion | None,
) -> tuple[bool, tuple[GateResult, ...], str]:
    challenger_metrics, _, challenger_tags = tracking.run_values(
        tracking_uri=uri, run_id=challenger.run_id
    )
    champion_metrics, champion_tags = None, {}
    if champion is not None:
        champion_metrics, _, champion_tags = tracking.run_values(
            tracking_uri=uri, run_id=champion.run_id
        )
    results = evaluate_gates(
        gates, challenger=challenger_metrics, champion=champion_metrics, settings=settings
    )
    promoted = all(result.passed for result in results)
    holdouts = f"holdout {challenger_tags.get('holdout_as_of', '?')}"
    if champion is not None:
        holdouts += f" (champion's holdout {champion_tags.get('holdout_as_of', '?')})"
    failed = ", ".join(result.name for result in results if not result.passed)
    message = (
        f"version {challenger.version} promoted to champion ({holdouts})"
        if promoted
        else f"version {challenger.version} not promoted: failed {failed} ({holdouts})"
    )
    return promoted, results, message


def _operator() -> str:
    """The OS user running the command (the audit's "who")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _record(decision: PromotionDecision, *, uri: str, home: str | Path) -> None:
    """Tag the challenger version with the outcome and append the decision to the audit log."""
    if decision.challenger_version is not None:
        tracking.tag_version(
            tracking_uri=uri,
            model_name=decision.model_name,
            version=decision.challenger_version,
            tags={
                "promotion": decision.to_record()["decision"],
                "promotion_at": decision.decided_at,
                **_acceptance_tags(decision.accepted_findings),
            },
        )
        if decision.accepted_findings:
            tracking.tag_version_run(
                tracking_uri=uri,
                model_name=decision.model_name,
                version=decision.challenger_version,
                tags=_acceptance_tags(decision.accepted_findings),
            )
    append_audit_record(home, decision.to_record())


def _acceptance_tags(accepted: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Version tags naming the accepted findings (group names and dates only)."""
    if not accepted:
        return {}
    return {
        "fairness_accepted": "; ".join(str(item["finding"]) for item in accepted)[:4000],
        "fairness_accepted_by": str(accepted[0]["accepted_by"]),
        "fairness_accepted_review_by": min(str(item["review_by"]) for item in accepted),
    }


def _accepted_at_promotion(
    results: tuple[GateResult, ...], *, by: str, at: str
) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """The fairness gate's accepted failures stamped with who and when, and unused acceptances."""
    fairness = next((result for result in results if result.name == "fairness"), None)
    if fairness is None:
        return (), ()
    accepted = tuple(item | {"accepted_by": by, "accepted_at": at} for item in fairness.accepted)
    return accepted, fairness.unused_acceptances


def promote(
    *,
    home: str | Path,
    settings: TrainSettings | None = None,
    tracking_uri: str | None = None,
    gates: tuple[Gate, ...] | None = None,
    fairness: FairnessGate | None = None,
    accepted: Sequence[AcceptedFinding] = (),
) -> PromotionDecision:
    """Make the challenger the champion if it passes every gate; audit the decision either way.

    `gates` default to every promotion gate, the fairness gate judging with `fairness` (the
    council's policy; default the product's) and the council's `accepted` findings (each covers
    exactly one failure until its review date; the operator running this is recorded as the
    one who accepted them). A new champion's model card and transparency record are written to
    `<home>/governance/` and logged to its run.
    """
    settings = settings or TrainSettings()
    fairness = fairness or FairnessGate()
    now, operator = datetime.now(UTC), _operator()
    if gates is None:
        gates = promotion_gates(fairness, accepted=accepted, today=now.date())
    uri = tracking.resolve_tracking_uri(home=home, tracking_uri=tracking_uri)
    name = settings.model_name
    challenger, champion = _challenger_and_champion(uri=uri, model_name=name)
    promoted, results, message = (
        (False, (), "no challenger to promote: train a model first")
        if challenger is None
        else _decide(
            uri=uri, settings=settings, gates=gates, challenger=challenger, champion=champion
        )
    )
    if promoted:
        _make_champion(uri=uri, model_name=name, version=challenger.version)
    before = champion.version if champion else None
    decided_at = now.isoformat(timespec="seconds")
    accepted_findings, unused = _accepted_at_promotion(results, by=operator, at=decided_at)
    decision = PromotionDecision(
        promoted=promoted,
        model_name=name,
        challenger_version=challenger.version if challenger else None,
        champion_before=before,
        champion_after=challenger.version if promoted else before,
        gates=results,
        message=message,
        decided_at=decided_at,
        decided_by=operator,
        fairness_policy=asdict(fairness),
        accepted_findings=accepted_findings if promoted else (),
        unused_acceptances=unused,
    )
    if promoted:
        records = write_governance_records(
            decision, version=challenger, uri=uri, home=home, settings=settings
        )
        decision = replace(decision, records=tuple(str(path) for path in records))
    _record(decision, uri=uri, home=home)
    return decision


def _challenger_and_champion(
    *, uri: str, model_name: str
) -> tuple[tracking.RegisteredVersion | None, tracking.RegisteredVersion | None]:
    return tuple(
        tracking.version_by_alias(tracking_uri=uri, model_name=model_name, alias=alias)
        for alias in (tracking.CHALLENGER, tracking.CHAMPION)
    )


def _make_champion(*, uri: str, model_name: str, version: str) -> None:
    """Point `champion` at the version and clear `challenger`."""
    tracking.set_alias(
        tracking_uri=uri, model_name=model_name, alias=tracking.CHAMPION, version=version
    )
    tracking.remove_alias(tracking_uri=uri, model_name=model_name, alias=tracking.CHALLENGER)


def governance_dir(home: str | Path, *, version: str) -> Path:
    """Where a champion's model card and transparency record are kept."""
    return Path(home) / GOVERNANCE_DIR / f"version-{version}"


def write_governance_records(
    decision: PromotionDecision,
    *,
    version: tracking.RegisteredVersion,
    uri: str,
    home: str | Path,
    settings: TrainSettings,
) -> list[Path]:
    """The new champion's model card and ATRS record, in the home folder and in its run.

    `<home>/governance/version-<v>/` keeps every champion's; `<home>/governance/
    transparency-record.md` is the current champion's (what the model page and docs show).
    """
    metrics, params, _ = tracking.run_values(tracking_uri=uri, run_id=version.run_id)
    folder = governance_dir(home, version=version.version)
    with tempfile.TemporaryDirectory(prefix="rebalance-record-") as scratch:
        downloaded = {
            name: tracking.download_run_artifacts(
                tracking_uri=uri, run_id=version.run_id, path=name, dst=Path(scratch)
            )
            for name in ("model_card.md", "data_summary.json")
        }
        card = downloaded["model_card.md"].read_text(encoding="utf-8")
        summary = json.loads(downloaded["data_summary.json"].read_text(encoding="utf-8"))
    record = transparency_record(
        model_version=version.version,
        model_card=card,
        metrics=metrics,
        settings=params or settings,
        promotion=[asdict(gate) for gate in decision.gates],
        data_summary=summary,
        accepted_findings=decision.accepted_findings,
    )
    if decision.accepted_findings:
        # The champion's card says what was accepted to promote it, after its fairness audit
        # (the record has it in its promotion section, so it embeds the run's card as logged).
        card = card.rstrip() + "\n\n" + accepted_findings_section(decision.accepted_findings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_card.md").write_text(card, encoding="utf-8")
    (folder / ACCEPTED_FILE).write_text(
        json.dumps(list(decision.accepted_findings), indent=1, sort_keys=True), encoding="utf-8"
    )
    (folder / "transparency_record.md").write_text(record, encoding="utf-8")
    (folder.parent / CURRENT_RECORD).write_text(record, encoding="utf-8")
    tracking.log_artifacts(
        tracking_uri=uri, run_id=version.run_id, local_dir=folder, artifact_path="governance"
    )
    return [
        folder / "model_card.md",
        folder / "transparency_record.md",
        folder / ACCEPTED_FILE,
        folder.parent / CURRENT_RECORD,
    ]
