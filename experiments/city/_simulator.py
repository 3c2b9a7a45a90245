"""CitySimulator: a whole city stepped week by week.

Set-up (population, workforce, need chain, cases and records) and the weekly step (need moves,
events drawn and recorded, cases opened and closed) are here; the casework steps are the
CaseworkSteps mixin (_casework.py) and the tables and truth the CityRecords mixin (_views.py).
See docs/synthetic-city.md for how the city works, its calibration and its knobs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

import experiments.city._cases as casework
import experiments.city._signals as signals
from experiments.city._calendar import (
    instalment_days,
    month_ends,
    school_days,
    term_ends,
    to_date,
    to_day,
    week_days,
)
from experiments.city._casework import CaseworkSteps
from experiments.city._checks import check_parameters
from experiments.city._draws import Draws, KeyedDraws, StreamDraws
from experiments.city._dynamics import (
    NeedDynamics,
    acute_share,
    household_rates,
    open_case_share,
    solve_referral_scale,
    state_code,
    stationary_tiers,
    transition,
)
from experiments.city._events import (
    EventBatch,
    assign_people,
    concat_batches,
    draw_crises,
    draw_incidents,
    incident_household_factors,
    incident_state_multipliers,
)
from experiments.city._population import draw_population
from experiments.city._recording import UnderReporting, keep_probability
from experiments.city._tables import (
    events_frame,
)
from experiments.city._views import CityRecords
from experiments.city._workforce import draw_workforce


class CitySimulator(CaseworkSteps, CityRecords):
    """A whole city stepped week by week.

    Parameters are fixed at construction; the city is generated and its hidden state initialised
    from the long-run (stationary) distribution of the need chain, so records from the first week
    already look like a city in steady state. Week 0 starts on `start`.

    With `background_referrals` (the default) households are referred to key workers by the
    city's usual practice (a referral chance that depends on need, scaled so that open cases use
    about `target_utilisation` of the active capacity). Turn it off to drive allocations yourself
    through `step(allocations)`.
    """

    def __init__(
        self,
        *,
        households: int = 110_000,
        seed: int = 0,
        start: date,
        under_reporting: UnderReporting | None = None,
        case_effect: float = 0.2,
        case_recovery: float = 0.25,
        households_per_worker: int = 700,
        target_utilisation: float = 0.68,
        background_referrals: bool = True,
        dynamics: NeedDynamics | None = None,
    ) -> None:
        check_parameters(
            households=households,
            case_effect=case_effect,
            households_per_worker=households_per_worker,
            target_utilisation=target_utilisation,
        )
        self.households_count = households
        self.seed = seed
        self.start = start
        self.under_reporting = under_reporting
        self.background_referrals = background_referrals
        streams = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(6)]
        self._rng_people, self._rng_setup, self._rng_chain, self._rng_cases = streams[:4]
        self._rng_events, self._rng_reporting = streams[4:]
        self._population = draw_population(
            self._rng_people, households=households, start_year=start.year
        )
        self._workforce = draw_workforce(
            self._rng_people,
            self._population,
            households_per_worker=households_per_worker,
            leavers_share=0.04,
        )
        self.dynamics = replace(
            dynamics or NeedDynamics(), case_effect=case_effect, case_recovery=case_recovery
        )
        self._rates = household_rates(
            self.dynamics,
            propensity=self._population.propensity,
            crisis_multiplier=self._population.crisis_multiplier,
        )
        self._keep = keep_probability(self._population, under_reporting)
        self._setup_cases(target_utilisation)
        self._setup_state()
        self._setup_records()

    # ----------------------------------------------------------------------------- set-up
    def _setup_cases(self, target_utilisation: float) -> None:
        population, workforce = self._population, self._workforce
        self._domain_count = population.domains.sum(axis=1)
        self._skills_needed = casework.needed_skills(population)
        self._worker_skills = casework.skill_matrix(workforce.skills)
        self._worker_load = np.zeros(workforce.size, dtype=np.int64)
        self._open_case = np.full(population.size, -1, dtype=np.int64)
        self._book = casework.CaseBook()
        # An evenly spaced sample is enough to solve the chain's long-run caseload exactly.
        self._chain_sample = np.unique(np.linspace(0, population.size - 1, 4000).astype(np.int64))
        self.referral_scale = solve_referral_scale(
            self._rates,
            expected_points=casework.expected_complexity(self._domain_count),
            target_points=target_utilisation * workforce.capacity_points.sum(),
            sample=self._chain_sample,
        )
        self.blocked_referrals = 0

    def _setup_state(self) -> None:
        """Draw tier, acute episode and case status from their long-run distribution."""
        rng, population = self._rng_setup, self._population
        cumulative = np.cumsum(stationary_tiers(self._rates), axis=1)
        self._tier = np.minimum((rng.random(population.size)[:, None] > cumulative).sum(axis=1), 3)
        row = np.arange(population.size)
        self._acute = rng.random(population.size) < acute_share(self._rates)[row, self._tier]
        open_share = open_case_share(self._rates, self.referral_scale, self._chain_sample)
        referred = rng.random(population.size) < open_share[self._tier, self._acute.astype(int)]
        weeks_open = np.minimum(rng.geometric(np.array(self.dynamics.case_close)[self._tier]), 104)
        self.week = 0
        referred = np.flatnonzero(referred)
        self._open_referrals(referred, opened=to_day(self.start) - 7 * weeks_open[referred])
        self._rent_arrears = np.zeros(population.size)
        self._council_tax_arrears = np.zeros(population.size)
        self._warm_up_arrears(weeks=52)
        self._school = signals.new_school_ledger(rng, population)

    def _warm_up_arrears(self, *, weeks: int) -> None:
        """A year of arrears history at the starting state, so balances start realistic."""
        struggle, draws = self._struggle(), StreamDraws(self._rng_setup)
        for week in range(weeks):
            self._rent_arrears = signals.update_rent_arrears(
                draws,
                self._population,
                balance=self._rent_arrears,
                tier=self._tier,
                struggle=struggle,
            )
            if week % 52 < 43 and week % 4 == 0:  # ten instalments a year
                self._council_tax_arrears = signals.update_council_tax_arrears(
                    draws,
                    self._population,
                    balance=self._council_tax_arrears,
                    tier=self._tier,
                    struggle=struggle,
                )

    def _setup_records(self) -> None:
        factors = incident_household_factors(self._population)
        self._incident_factors = factors
        self._incident_multipliers = incident_state_multipliers(self.dynamics)
        self._incident_totals = factors @ self._incident_multipliers
        self._recorded: list[tuple[EventBatch, np.ndarray, np.ndarray]] = []
        self._next_event = 1
        self._crises: list[np.ndarray] = []
        self._expected_crises: list[float] = []
        self._survival: dict[int, np.ndarray] = {}
        self._crises_ahead: dict[int, np.ndarray] = {}
        self._leavers_transferred_week = -1
        self._keyed = False

    # ------------------------------------------------------------------------ properties
    @property
    def today(self) -> date:
        """The last day simulated so far (the day before `start` before the first step)."""
        return to_date(self._first_day(self.week) - 1)

    def _first_day(self, week: int) -> int:
        return to_day(self.start) + 7 * week

    def _struggle(self) -> np.ndarray:
        return signals.struggle_multiplier(
            self._population,
            acute=self._acute,
            case=self._open_case >= 0,
            case_effect=self.dynamics.case_effect,
        )

    # -------------------------------------------------------------------------- stepping
    def step(self, allocations: pd.DataFrame | None = None) -> pd.DataFrame:
        """Advance one week; returns the events that occurred this week and were recorded.

        allocations (columns household_id, worker_id, complexity_points) open key-worker cases on
        the first day of the week, before anything happens in it. Returned events may have a
        known_at after this week (agencies report late); see `events(known_by=...)`.
        """
        batch, known, numbers = self._advance(allocations)
        return events_frame(self._population, batch, known=known, event_number=numbers)

    def start_week(self) -> None:
        """Hand this week's leaving workers' open cases to colleagues now (step does it anyway).

        A policy that decides allocations outside calls this first, so that the workers and
        cases it reads (`workers(as_at=...)`, `cases(as_at=...)` on the week's first day) already
        show the transfers and the room they take.
        """
        if self._leavers_transferred_week != self.week:
            self._transfer_leavers(self._first_day(self.week))
            self._leavers_transferred_week = self.week

    def stop_background_referrals(self) -> None:
        """From now on only `step(allocations)` opens cases (a policy experiment after history)."""
        self.background_referrals = False
        # Escalation probabilities and benefits assumed the referral practice.
        self._survival.clear()
        self._crises_ahead.clear()

    def use_common_random_numbers(self) -> None:
        """From now on every draw depends only on (seed, week, stream, household or event).

        Copies of this simulator that are then treated differently (policies) share the luck of
        every household whose state is the same: common random numbers (experiments/_city_draws).
        What was simulated before keeps its sequential draws.
        """
        self._keyed = True

    def _week_draws(self) -> tuple[Draws, Draws, np.ndarray]:
        """This week's draws for events and for reporting, and the chain's (4, households)
        uniforms (crisis, tier move, acute episode, case closing or referral)."""
        if not self._keyed:
            chain = self._rng_chain.random((4, self._population.size))
            return StreamDraws(self._rng_events), StreamDraws(self._rng_reporting), chain
        keyed = KeyedDraws(seed=self.seed, week=self.week)
        households = np.arange(self._population.size)
        chain = np.stack(
            [
                keyed.random(households, stream=stream)
                for stream in ("chain_crisis", "chain_tier", "chain_acute", "chain_case")
            ]
        )
        return keyed, keyed, chain

    def _advance(
        self, allocations: pd.DataFrame | None
    ) -> tuple[EventBatch, np.ndarray, np.ndarray]:
        first_day = self._first_day(self.week)
        self.start_week()
        if allocations is not None and len(allocations):
            self._allocate(allocations, first_day)
        case = (self._open_case >= 0).astype(np.int64)
        moves = transition(
            self._rates,
            tier=self._tier,
            acute=self._acute,
            case=case,
            referral_scale=self._chain_referral_scale(),
        )
        events_draws, reporting_draws, chain = self._week_draws()
        crisis = chain[0] < moves.crisis
        self._expected_crises.append(float(moves.crisis.sum()))
        batch = self._week_events(first_day, crisis=crisis, case=case, draws=events_draws)
        self._move(moves, chain, batch=batch, last_day=first_day + 6)
        self.week += 1
        return self._record(batch, events_draws=events_draws, reporting_draws=reporting_draws)

    def _chain_referral_scale(self) -> float:
        return self.referral_scale if self.background_referrals else 0.0

    def _week_events(
        self, first_day: int, *, crisis: np.ndarray, case: np.ndarray, draws: Draws
    ) -> EventBatch:
        """Everything that happens to households this week, recorded or not."""
        population = self._population
        crisis_households = np.flatnonzero(crisis)
        crises = draw_crises(
            draws,
            population,
            households=crisis_households,
            tier=self._tier[crisis_households],
            rent_arrears=self._rent_arrears[crisis_households],
            first_day=first_day,
        )
        self._crises.append(crisis_households)
        state = state_code(self._tier, self._acute, case)
        incidents = draw_incidents(
            draws,
            factors=self._incident_factors,
            multipliers=self._incident_multipliers,
            totals=self._incident_totals,
            state=state,
            first_day=first_day,
        )
        batches = [
            crises,
            incidents,
            *self._money_events(first_day, draws=draws),
            *self._school_events(first_day, case, draws=draws),
        ]
        return assign_people(draws, population, concat_batches(batches))

    def _money_events(self, first_day: int, *, draws: Draws) -> list[EventBatch]:
        population, days = self._population, week_days(first_day)
        struggle = self._struggle()
        self._rent_arrears = signals.update_rent_arrears(
            draws, population, balance=self._rent_arrears, tier=self._tier, struggle=struggle
        )
        if len(instalment_days(days)):
            self._council_tax_arrears = signals.update_council_tax_arrears(
                draws,
                population,
                balance=self._council_tax_arrears,
                tier=self._tier,
                struggle=struggle,
            )
        batches = [
            signals.arrears_notices(
                draws, population, rent_balance=self._rent_arrears, first_day=first_day
            )
        ]
        for day in month_ends(days).tolist():
            batches.append(
                signals.arrears_statements(
                    rent_balance=self._rent_arrears,
                    council_tax_balance=self._council_tax_arrears,
                    day=day,
                )
            )
        return batches

    def _school_events(self, first_day: int, case: np.ndarray, *, draws: Draws) -> list[EventBatch]:
        days = week_days(first_day)
        in_school = school_days(days)
        batches = []
        if len(in_school):
            batches.append(
                signals.attend_school(
                    draws,
                    self._population,
                    self._school,
                    school_days=in_school,
                    tier=self._tier,
                    acute=self._acute,
                    case=case,
                    case_effect=self.dynamics.case_effect,
                )
            )
        for day in term_ends(days).tolist():
            batches.append(signals.absence_reports(self._school, self._population, day=day))
        return batches
