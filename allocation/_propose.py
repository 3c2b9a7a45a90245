"""The weekly proposal: prepare the inputs, decide, and assemble rows, workers, continuing cases,
the lock report and a JSON-ready summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from allocation._assemble import OPTIMISER, Run, assemble
from allocation._greedy import fill_gaps, greedy_choice
from allocation._prepare import Prepared, prepare
from allocation._settings import AllocationSettings, Proposal
from allocation._solver import solve_allocation

ASSEMBLY_RESERVE_S = 0.5  # seconds kept from the time limit for explanations and the summary


def _decide(
    decide: Callable[[Prepared, float], tuple[pd.Series, list[dict]]],
    *,
    method: str,
    settings: AllocationSettings,
    **inputs: Any,
) -> Proposal:
    # The time limit covers the whole proposal; the explanations need a moment at the end.
    deadline = time.perf_counter() + settings.time_limit_s - ASSEMBLY_RESERVE_S
    prepared = prepare(settings=settings, **inputs)
    started = time.perf_counter()
    chosen, stats = decide(prepared, deadline)
    completed = fill_gaps(prepared.pairs, chosen=chosen, workers=prepared.workers)
    run = Run(
        method, settings, stats, time.perf_counter() - started, int((completed & ~chosen).sum())
    )
    return assemble(prepared, completed, run)


def propose_allocation(
    *,
    scores: pd.DataFrame,
    workers: pd.DataFrame,
    cases: pd.DataFrame,
    locks: pd.DataFrame | None = None,
    locality: str | None = None,
    settings: AllocationSettings | None = None,
    as_of=None,
) -> Proposal:
    """The optimiser's weekly proposal (HiGHS MIP and CP-SAT through OR-Tools), with
    explanations, locks honoured or reported.

    `cases` may hold the partners' whole case history: the cases open on `as_of` (the week's
    as-of date; features.cases.open_cases) are the caseloads. Without `as_of`, the cases with no
    closing date are.

    Raises AllocationInputError for malformed inputs; empty or infeasible situations (no
    candidates, no active worker in a locality) give a proposal whose summary says so.
    """
    settings = settings or AllocationSettings()
    return _decide(
        lambda prepared, deadline: solve_allocation(
            prepared.pairs, workers=prepared.workers, settings=settings, deadline=deadline
        ),
        method=OPTIMISER,
        settings=settings,
        scores=scores,
        workers=workers,
        cases=cases,
        locks=locks,
        locality=locality,
        as_of=as_of,
    )


def greedy_allocation(
    *,
    scores: pd.DataFrame,
    workers: pd.DataFrame,
    cases: pd.DataFrame,
    locks: pd.DataFrame | None = None,
    locality: str | None = None,
    settings: AllocationSettings | None = None,
    as_of=None,
) -> Proposal:
    """The by-hand baseline under the same rules: highest risk first, to the eligible worker with
    the most free points."""
    settings = settings or AllocationSettings()
    return _decide(
        lambda prepared, _deadline: (greedy_choice(prepared.pairs, workers=prepared.workers), []),
        method="greedy",
        settings=settings,
        scores=scores,
        workers=workers,
        cases=cases,
        locks=locks,
        locality=locality,
        as_of=as_of,
    )
