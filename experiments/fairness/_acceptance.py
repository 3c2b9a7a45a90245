"""Accepted findings: a council's recorded decision to promote despite a fairness finding.

Each acceptance names exactly one attribute, group and metric, with a reason and a review date;
`apply_acceptances` re-judges a gate verdict with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from experiments.fairness._audit import GATE_METRICS
from experiments.fairness._gate import GateResult
from features.groups import AUDIT_ATTRIBUTES


@dataclass(frozen=True)
class AcceptedFinding:
    """One fairness failure a council accepts at promotion, with its reason and review date.

    It names exactly one attribute, group and metric (`age_band=65+:recall_at_k`); it covers
    only that failure, and from the day after `review_by` it no longer counts.
    """

    attribute: str
    group: str
    metric: str
    reason: str
    review_by: date
    source: str = "command line"

    def __post_init__(self) -> None:
        if self.attribute not in AUDIT_ATTRIBUTES:
            raise ValueError(
                f"accepted finding {self.finding!r}: attribute must be one of "
                f"{', '.join(AUDIT_ATTRIBUTES)}"
            )
        if not self.group.strip():
            raise ValueError(f"accepted finding {self.finding!r}: the group is empty")
        if self.metric not in GATE_METRICS:
            raise ValueError(
                f"accepted finding {self.finding!r}: metric must be one of "
                f"{', '.join(GATE_METRICS)}"
            )
        if not self.reason.strip():
            raise ValueError(f"accepted finding {self.finding!r}: a reason is required")
        if not isinstance(self.review_by, date):
            raise ValueError(f"accepted finding {self.finding!r}: review_by must be a date")

    @property
    def finding(self) -> str:
        return f"{self.attribute}={self.group}:{self.metric}"

    def as_record(self) -> dict[str, object]:
        return {
            "finding": self.finding,
            "reason": self.reason.strip(),
            "review_by": self.review_by.isoformat(),
            "source": self.source,
        }


def accepted_finding(
    finding: str, *, reason: str | None, review_by, source: str = "command line"
) -> AcceptedFinding:
    """An AcceptedFinding from `attribute=group:metric` text (the CLI's and the TOML's form).

    The metric is after the last colon and the attribute before the first "=", so group names
    may hold either ("65+", "Stoke: North"). review_by: a date or YYYY-MM-DD text.
    """
    head, colon, metric = str(finding).strip().rpartition(":")
    attribute, equals, group = head.partition("=")
    if not (colon and equals):
        raise ValueError(
            f"accepted finding {finding!r}: expected ATTRIBUTE=GROUP:METRIC, "
            'e.g. "age_band=65+:recall_at_k"'
        )
    if reason is None or not str(reason).strip():
        raise ValueError(
            f"accepted finding {finding!r}: a reason is required (why the council accepts it)"
        )
    return AcceptedFinding(
        attribute=attribute.strip(),
        group=group.strip(),
        metric=metric.strip(),
        reason=str(reason).strip(),
        review_by=_review_date(review_by, finding=finding),
        source=source,
    )


def _review_date(value, *, finding: str) -> date:
    if value is None or value == "":
        raise ValueError(f"accepted finding {finding!r}: review_by (YYYY-MM-DD) is required")
    if isinstance(value, date):
        # TOML dates arrive as datetime.date; a datetime counts by its day.
        return value if type(value) is date else value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(
            f"accepted finding {finding!r}: review_by {value!r} is not a date (YYYY-MM-DD)"
        ) from None


_ACCEPTED_KEYS: tuple[str, ...] = ("finding", "reason", "review_by")


def accepted_findings_from_config(
    entries: object, *, source: str = "rebalance.toml"
) -> tuple[AcceptedFinding, ...]:
    """`[fairness] accepted = [{finding, reason, review_by}, ...]` as AcceptedFindings.

    Every key is required (review_by too: a standing acceptance must come up for review);
    unknown keys are refused; errors name the entry (1-based).
    """
    if not isinstance(entries, list | tuple):
        raise ValueError("accepted must be a list of {finding, reason, review_by} tables")
    findings = []
    for number, entry in enumerate(entries, start=1):
        where = f"accepted entry {number}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a table {{finding, reason, review_by}}")
        unknown = sorted(set(entry) - set(_ACCEPTED_KEYS))
        missing = [key for key in _ACCEPTED_KEYS if key not in entry]
        if unknown or missing:
            problem = f"unknown key(s) {', '.join(unknown)}" if unknown else ""
            problem = problem or f"missing {', '.join(missing)}"
            raise ValueError(f"{where}: {problem} (expected finding, reason, review_by)")
        try:
            findings.append(
                accepted_finding(
                    str(entry["finding"]),
                    reason=str(entry["reason"]),
                    review_by=entry["review_by"],
                    source=source,
                )
            )
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return tuple(findings)


def apply_acceptances(
    result: GateResult, *, accepted: Sequence[AcceptedFinding], today: date
) -> GateResult:
    """The fairness verdict once the council's acceptances are taken into account.

    Passes only if every failure is covered by a current acceptance naming exactly its attribute,
    group and metric (a "too few to judge" failure names no metric and cannot be accepted: change
    the policy instead). An acceptance past its review date does not count; one that matches no
    failure is reported, not blocking. `failures` keeps every finding; `accepted` lists the
    covered ones with their acceptance.
    """
    current = [item for item in accepted if item.review_by >= today]
    by_key = {(item.attribute, item.group, item.metric): item for item in current}
    covered, uncovered = [], []
    for failure in result.failures:
        item = by_key.get((failure["attribute"], failure["group"], failure["metric"]))
        (covered if item else uncovered).append(failure | item.as_record() if item else failure)
    used = {record["finding"] for record in covered}
    unused = [
        item.as_record() | {"why": f"expired on {item.review_by.isoformat()}, not counted"}
        for item in accepted
        if item.review_by < today
    ] + [
        item.as_record() | {"why": "matches no failure of this model"}
        for item in current
        if item.finding not in used
    ]
    passed = not uncovered
    return dataclasses.replace(
        result,
        passed=passed,
        message=_acceptance_message(result, covered=covered, uncovered=uncovered, unused=unused),
        accepted=covered,
        unused_acceptances=unused,
    )


def _acceptance_message(
    result: GateResult, *, covered: list[dict], uncovered: list[dict], unused: list[dict]
) -> str:
    if not covered and not unused:
        return result.message
    parts = []
    if uncovered:
        parts.append("; ".join(str(failure["text"]) for failure in uncovered))
    elif covered:
        parts.append(f"passed only by {len(covered)} finding(s) the council accepted")
    else:
        parts.append(result.message)
    parts += [
        f"ACCEPTED {failure['text']} (reason: {failure['reason']}; review by "
        f"{failure['review_by']})"
        for failure in covered
    ]
    if uncovered and covered:
        parts.append("the accepted findings alone do not let it pass")
    parts += [f"acceptance {item['finding']} {item['why']}" for item in unused]
    return "; ".join(parts)
