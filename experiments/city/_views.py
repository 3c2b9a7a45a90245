"""What a CitySimulator shows: its contract tables as at a date, and the truth behind them
(hidden state, escalation probabilities, expected crises). A mixin of CitySimulator."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from experiments.city._calendar import (
    to_day,
)
from experiments.city._dynamics import (
    TIER_NAMES,
    crises_ahead,
    state_code,
    survival,
    transition,
)
from experiments.city._events import (
    concat_batches,
    select_batch,
)
from experiments.city._population import Population
from experiments.city._tables import (
    cases_frame,
    events_frame,
    households_frame,
    people_frame,
    workers_frame,
)

HORIZON_WEEKS = 26


class CityRecords:
    """CitySimulator's tables and truth (state set up by CitySimulator)."""

    def households(self, *, as_at: date | None = None) -> pd.DataFrame:
        """The households table; adults and children as at the year of as_at (default today)."""
        return households_frame(self._population, year=(as_at or self.today).year)

    def people(self, *, as_at: date | None = None) -> pd.DataFrame:
        """The people table: everyone born by the year of as_at (default today)."""
        return people_frame(self._population, year=(as_at or self.today).year)

    def workers(self, *, as_at: date | None = None) -> pd.DataFrame:
        """The workers table; workers who have left by as_at (default today) are inactive."""
        day = to_day(as_at or self.today)
        return workers_frame(self._workforce, week=(day - to_day(self.start)) // 7)

    def cases(self, *, as_at: date | None = None) -> pd.DataFrame:
        """The cases table as at as_at (default today): later closures show as still open."""
        return cases_frame(
            self._book, self._population, self._workforce, day=to_day(as_at or self.today)
        )

    def events(self, *, known_by: date | None = None) -> pd.DataFrame:
        """All recorded events so far, or only those known by a date (what an extract holds)."""
        batch = concat_batches([item[0] for item in self._recorded])
        known = np.concatenate([item[1] for item in self._recorded] or [np.zeros(0, np.int64)])
        numbers = np.concatenate([item[2] for item in self._recorded] or [np.zeros(0, np.int64)])
        if known_by is not None:
            kept = known <= to_day(known_by)
            batch, known, numbers = select_batch(batch, kept), known[kept], numbers[kept]
        return events_frame(self._population, batch, known=known, event_number=numbers)

    def hidden_state(self) -> pd.DataFrame:
        """The truth behind the records, for experiments only: never a model input.

        One row per household: tier (0-3) and its name, acute episode, open case, arrears
        balances, this week's crisis probability and the 26-week escalation probability.
        """
        case = (self._open_case >= 0).astype(np.int64)
        moves = transition(
            self._rates,
            tier=self._tier,
            acute=self._acute,
            case=case,
            referral_scale=self._chain_referral_scale(),
        )
        return pd.DataFrame(
            {
                "household_id": pd.array(self._population.household_id, dtype="str"),
                "tier": self._tier.astype(np.int64),
                "need": pd.array(np.array(TIER_NAMES, dtype=object)[self._tier], dtype="str"),
                "acute": self._acute.copy(),
                "case_open": case.astype(bool),
                "rent_arrears_balance": self._rent_arrears.copy(),
                "council_tax_arrears_balance": self._council_tax_arrears.copy(),
                "crisis_probability_week": moves.crisis,
                "p_escalation": self.escalation_probability(),
            }
        )

    def escalation_probability(self, *, horizon_weeks: int = HORIZON_WEEKS) -> np.ndarray:
        """Each household's exact probability of >= 1 crisis in the next horizon_weeks.

        Computed from the hidden chain (not a model), assuming the city's background referral
        practice continues (or, with background_referrals off, that no new cases are opened).
        """
        if horizon_weeks not in self._survival:
            self._survival[horizon_weeks] = survival(
                self._rates,
                horizon_weeks=horizon_weeks,
                referral_scale=self._chain_referral_scale(),
            )
        state = state_code(self._tier, self._acute, (self._open_case >= 0).astype(np.int64))
        return 1.0 - self._survival[horizon_weeks][np.arange(self._population.size), state]

    def _crises_ahead_table(self, horizon_weeks: int) -> np.ndarray:
        if horizon_weeks not in self._crises_ahead:
            self._crises_ahead[horizon_weeks] = crises_ahead(
                self._rates,
                horizon_weeks=horizon_weeks,
                referral_scale=self._chain_referral_scale(),
            )
        return self._crises_ahead[horizon_weeks]

    def expected_crises_ahead(self, *, horizon_weeks: int = HORIZON_WEEKS) -> np.ndarray:
        """Each household's expected number of crises in the next horizon_weeks from its state
        today (open cases run on and close as the chain says), exact from the hidden chain.

        Like escalation_probability it assumes the city's referral practice continues (or, with
        background referrals off, that nobody else opens a case). Experiments only.
        """
        state = state_code(self._tier, self._acute, (self._open_case >= 0).astype(np.int64))
        table = self._crises_ahead_table(horizon_weeks)
        return table[np.arange(self._population.size), state]

    def case_benefit(self, *, horizon_weeks: int = HORIZON_WEEKS) -> np.ndarray:
        """Each household's expected crises in the next horizon_weeks that a key-worker case
        opened today would prevent: E[crises | no case now] - E[crises | case now], exact from
        the hidden chain (0 where a case is already open). Experiments only (the oracle).
        """
        table, rows = self._crises_ahead_table(horizon_weeks), np.arange(self._population.size)
        without = table[rows, state_code(self._tier, self._acute, 0)]
        with_case = table[rows, state_code(self._tier, self._acute, 1)]
        return np.where(self._open_case >= 0, 0.0, without - with_case)

    def crisis_weeks(self) -> list[np.ndarray]:
        """For each simulated week, the households that had a crisis (recorded or not)."""
        return list(self._crises)

    def expected_crises(self) -> np.ndarray:
        """For each simulated week, the sum of every household's crisis probability that week.

        The expectation of the number of households with a crisis: a lower-variance measure of
        a policy's effect than the realised count (experiments only).
        """
        return np.array(self._expected_crises, dtype=np.float64)

    @property
    def population(self) -> Population:
        """The static population arrays (read-only by convention)."""
        return self._population
