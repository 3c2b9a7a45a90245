"""The city's casework steps: cases opened, moved and closed, leavers' cases transferred,
allocations placed, events recorded. A mixin of CitySimulator (its state lives there)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import experiments.city._cases as casework
from experiments.city._checks import validate_allocations
from experiments.city._draws import Draws
from experiments.city._dynamics import (
    Transition,
)
from experiments.city._events import (
    EVENT_NAMES,
    EventBatch,
    event_slots,
    reporting_days,
    select_batch,
)
from features.contract import (
    CLOSE_REASONS,
)

_TRANSFER_CRISES = ("child_protection_plan", "child_taken_into_care")


class CaseworkSteps:
    """CitySimulator's casework and record-keeping steps (state set up by CitySimulator)."""

    def _move(
        self, moves: Transition, draws: np.ndarray, *, batch: EventBatch, last_day: int
    ) -> None:
        """Next week's hidden state, closing and opening cases as the chain says."""
        up = draws[1] < moves.up
        down = ~up & (draws[1] < moves.up + moves.down)
        tier_next = self._tier + up - down
        self._acute = draws[2] < moves.acute_next
        ending = draws[3] < moves.close + moves.move
        moved = ending & (draws[3] >= moves.close)
        self._close(np.flatnonzero(ending), moved=moved, tier_next=tier_next, day=last_day)
        self._close_transferred(batch, day=last_day)
        self._tier = tier_next
        referred = np.flatnonzero(draws[3] < moves.refer)
        self._open_referrals(referred, opened=np.full(len(referred), last_day))

    # ------------------------------------------------------------------------------ cases
    def _close(
        self, households: np.ndarray, *, moved: np.ndarray, tier_next: np.ndarray, day: int
    ) -> None:
        rows = self._open_case[households]
        weeks_open = (day - self._book.opened[rows]) // 7 + 1
        reason = casework.close_reasons(
            weeks_open=weeks_open, moved=moved[households], tier_next=tier_next[households]
        )
        self._end_cases(rows, day=day, reason=reason)

    def _end_cases(self, rows: np.ndarray, *, day: int, reason: np.ndarray) -> None:
        casework.close_cases(self._book, rows, day=day, reason=reason)
        np.subtract.at(self._worker_load, self._book.worker[rows], self._book.complexity[rows])
        self._open_case[self._book.household[rows]] = -1

    def _close_transferred(self, batch: EventBatch, *, day: int) -> None:
        """Children's social care takes over a case when a child protection crisis happens."""
        kinds = [EVENT_NAMES.index(name) for name in _TRANSFER_CRISES]
        households = np.unique(batch.household[np.isin(batch.kind, kinds)])
        rows = self._open_case[households]
        rows = rows[rows >= 0]
        self._end_cases(
            rows, day=day, reason=np.full(len(rows), CLOSE_REASONS.index("transferred"))
        )

    def _active_workers(self, week: int) -> np.ndarray:
        return self._workforce.leaves_week > week

    def _open_referrals(self, households: np.ndarray, *, opened: np.ndarray) -> None:
        """Give each referred household a worker with room (few a week: a short loop)."""
        noise = casework.complexity_noise(self._rng_cases, len(households))
        points = casework.complexity_points(
            domain_count=self._domain_count[households],
            tier=self._tier[households],
            acute=self._acute[households],
            noise=noise,
        )
        active = self._active_workers(self.week)
        capacity = self._workforce.capacity_points
        for household, point, day in zip(
            households.tolist(), points.tolist(), opened.tolist(), strict=True
        ):
            worker = casework.choose_worker(
                locality=int(self._population.locality[household]),
                skills=self._skills_needed[household],
                points=point,
                remaining=capacity - self._worker_load,
                active=active,
                worker_locality=self._workforce.locality,
                worker_skills=self._worker_skills,
            )
            if worker < 0:
                self.blocked_referrals += 1
                continue
            self._open(np.array([household]), np.array([worker]), day, np.array([point]))

    def _open(
        self, households: np.ndarray, workers: np.ndarray, day: int | np.ndarray, points: np.ndarray
    ) -> None:
        rows = casework.add_cases(
            self._book,
            household=households,
            worker=workers,
            opened=np.broadcast_to(day, len(households)),
            complexity=points,
        )
        np.add.at(self._worker_load, workers, points)
        self._open_case[households] = rows

    def _transfer_leavers(self, first_day: int) -> None:
        """Workers leaving this week hand their open cases to colleagues with room."""
        leaving = np.flatnonzero(self._workforce.leaves_week == self.week)
        if not len(leaving):
            return
        open_rows = self._open_case[self._open_case >= 0]
        rows = open_rows[np.isin(self._book.worker[open_rows], leaving)]
        households, points = self._book.household[rows], self._book.complexity[rows]
        transferred = np.full(len(rows), CLOSE_REASONS.index("transferred"))
        self._end_cases(rows, day=first_day - 1, reason=transferred)
        active = self._active_workers(self.week)
        capacity = self._workforce.capacity_points
        for household, point in zip(households.tolist(), points.tolist(), strict=True):
            worker = casework.choose_worker(
                locality=int(self._population.locality[household]),
                skills=self._skills_needed[household],
                points=point,
                remaining=capacity - self._worker_load,
                active=active,
                worker_locality=self._workforce.locality,
                worker_skills=self._worker_skills,
            )
            if worker >= 0:
                self._open(np.array([household]), np.array([worker]), first_day, np.array([point]))

    def _allocate(self, allocations: pd.DataFrame, first_day: int) -> None:
        households, workers, points = validate_allocations(
            allocations,
            household_ids=self._population.household_id,
            worker_ids=self._workforce.worker_id,
            open_case=self._open_case,
            active=self._active_workers(self.week),
            remaining=self._workforce.capacity_points - self._worker_load,
        )
        self._open(households, workers, first_day, points)

    # -------------------------------------------------------------------------- recording
    def _record(
        self, batch: EventBatch, *, events_draws: Draws, reporting_draws: Draws
    ) -> tuple[EventBatch, np.ndarray, np.ndarray]:
        """Apply reporting lags and any under-reporting; number and keep what is recorded."""
        known = reporting_days(events_draws, batch)
        if self._keep is not None:
            chance = self._keep[batch.household, batch.kind]
            draw = reporting_draws.random(
                batch.household, stream="event_kept", slots=event_slots(batch)
            )
            kept = draw < chance
            batch, known = select_batch(batch, kept), known[kept]
        order = np.lexsort((batch.person, batch.kind, batch.household, known, batch.occurred))
        batch, known = select_batch(batch, order), known[order]
        numbers = np.arange(self._next_event, self._next_event + len(batch))
        self._next_event += len(batch)
        self._recorded.append((batch, known, numbers))
        return batch, known, numbers
