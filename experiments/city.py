"""A synthetic Stoke-on-Trent: households, agencies' records and key workers, week by week.

`CitySimulator` holds a whole city and advances it one week at a time (`step`), optionally with
key-worker allocations decided outside (a later policy experiment). `generate_city` runs the
default city to a given end date and returns the contract tables plus the truth (each household's
exact probability of escalation and what actually happened); `write_city` writes them out.

See docs/synthetic-city.md for how the city works, its calibration and its knobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import _city_cases as casework
from experiments import _city_signals as signals
from experiments._city_calendar import (
    instalment_days,
    month_ends,
    school_days,
    term_ends,
    to_date,
    to_day,
    week_days,
)
from experiments._city_draws import Draws, KeyedDraws, StreamDraws
from experiments._city_dynamics import (
    TIER_NAMES,
    NeedDynamics,
    Transition,
    acute_share,
    crises_ahead,
    household_rates,
    open_case_share,
    solve_referral_scale,
    state_code,
    stationary_tiers,
    survival,
    transition,
)
from experiments._city_events import (
    EVENT_NAMES,
    EventBatch,
    assign_people,
    concat_batches,
    draw_crises,
    draw_incidents,
    event_slots,
    incident_household_factors,
    incident_state_multipliers,
    reporting_days,
    select_batch,
)
from experiments._city_places import WARDS
from experiments._city_population import Population, draw_population, draw_workforce
from experiments._city_tables import (
    TRUTH_COLUMNS,
    cases_frame,
    events_frame,
    households_frame,
    people_frame,
    truth_frame,
    workers_frame,
    write_tables,
)
from features.contract import (
    CLOSE_REASONS,
    ETHNICITIES,
    EVENT_TYPES,
    LOCALITIES,
    TENURES,
)

HORIZON_WEEKS = 26
DEFAULT_HISTORY_WEEKS = 182  # three and a half years of records
DEFAULT_TRUTH_DATES = 26  # as-of dates, four weeks apart: the last two years of labelled windows
MINIMUM_HOUSEHOLDS = 200
UnderReporting = Mapping[str, Mapping[str, float]]
_GROUP_COLUMNS = ("ethnicity", "locality", "ward", "tenure")
_TRANSFER_CRISES = ("child_protection_plan", "child_taken_into_care")


@dataclass(frozen=True)
class City:
    """The contract tables of a generated city as at `end`, plus the truth table."""

    households: pd.DataFrame
    people: pd.DataFrame
    events: pd.DataFrame
    workers: pd.DataFrame
    cases: pd.DataFrame
    truth: pd.DataFrame
    start: date
    end: date

    def tables(self) -> dict[str, pd.DataFrame]:
        """The six tables by file name."""
        return {
            "households": self.households,
            "people": self.people,
            "events": self.events,
            "workers": self.workers,
            "cases": self.cases,
            "truth": self.truth,
        }


def parse_under_reporting(spec: str) -> dict[str, dict[str, float]]:
    """Parse 'GROUP:TYPE=P,TYPE=P;GROUP:...' (e.g. 'asian:police_callout=0.6') for a CLI flag."""
    parsed: dict[str, dict[str, float]] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(";"))):
        group, separator, rules = part.partition(":")
        if not separator or not rules.strip():
            raise ValueError(f"under-reporting {part!r}: expected GROUP:EVENT_TYPE=PROBABILITY")
        for rule in rules.split(","):
            event_type, equals, probability = rule.strip().partition("=")
            if not equals:
                raise ValueError(f"under-reporting {rule!r}: expected EVENT_TYPE=PROBABILITY")
            try:
                parsed.setdefault(group.strip(), {})[event_type.strip()] = float(probability)
            except ValueError:
                raise ValueError(
                    f"under-reporting {rule!r}: {probability!r} is not a number"
                ) from None
    return parsed


def _group_members(population: Population, key: str) -> np.ndarray:
    """Households in an under-reporting group: 'COLUMN=VALUE', or a bare ethnicity value.

    A household's ethnicity is its reference person's (its first and oldest member's).
    """
    column, _, value = key.rpartition("=") if "=" in key else ("ethnicity", "=", key)
    vocabulary = {
        "ethnicity": (ETHNICITIES, population.person_ethnicity[population.first_person]),
        "locality": (LOCALITIES, population.locality),
        "ward": (tuple(ward.name for ward in WARDS), population.ward),
        "tenure": (TENURES, population.tenure),
    }
    if column not in vocabulary:
        raise ValueError(f"under_reporting group {key!r}: column must be one of {_GROUP_COLUMNS}")
    names, codes = vocabulary[column]
    if value not in names:
        raise ValueError(f"under_reporting group {key!r}: {value!r} is not a known {column}")
    return codes == names.index(value)


def _keep_probability(
    population: Population, under_reporting: UnderReporting | None
) -> np.ndarray | None:
    """(households, EVENT_NAMES) chance that an event is recorded, or None if all are."""
    if not under_reporting:
        return None
    keep = np.ones((population.size, len(EVENT_NAMES)))
    for group in sorted(under_reporting):
        members = _group_members(population, group)
        for event_type, probability in sorted(under_reporting[group].items()):
            if event_type not in EVENT_TYPES:
                raise ValueError(f"under_reporting[{group!r}]: unknown event type {event_type!r}")
            if not 0.0 <= float(probability) <= 1.0:
                raise ValueError(
                    f"under_reporting[{group!r}][{event_type!r}] = {probability}: "
                    "a reporting probability must be between 0 and 1"
                )
            keep[members, EVENT_NAMES.index(event_type)] *= float(probability)
    return keep


class CitySimulator:
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
        _check_parameters(
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
        self._keep = _keep_probability(self._population, under_reporting)
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
        households, workers, points = _validate_allocations(
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

    # -------------------------------------------------------------------------- accessors
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


def _check_parameters(
    *, households: int, case_effect: float, households_per_worker: int, target_utilisation: float
) -> None:
    if households < MINIMUM_HOUSEHOLDS:
        raise ValueError(f"households must be at least {MINIMUM_HOUSEHOLDS}, not {households}")
    if not 0.0 <= case_effect < 1.0:
        raise ValueError(f"case_effect must be in [0, 1), not {case_effect}")
    if households_per_worker < 1:
        raise ValueError(f"households_per_worker must be positive, not {households_per_worker}")
    if not 0.0 < target_utilisation <= 1.0:
        raise ValueError(f"target_utilisation must be in (0, 1], not {target_utilisation}")


def _validate_allocations(
    allocations: pd.DataFrame,
    *,
    household_ids: np.ndarray,
    worker_ids: np.ndarray,
    open_case: np.ndarray,
    active: np.ndarray,
    remaining: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row numbers of households and workers, and points; ValueError naming row and column."""
    missing = {"household_id", "worker_id", "complexity_points"} - set(allocations.columns)
    if missing:
        raise ValueError(f"allocations: missing column(s) {sorted(missing)}")
    households = _lookup(allocations["household_id"], household_ids, column="household_id")
    workers = _lookup(allocations["worker_id"], worker_ids, column="worker_id")
    points = pd.to_numeric(allocations["complexity_points"], errors="coerce").to_numpy()
    for row, (household, worker, point) in enumerate(
        zip(households, workers, points, strict=True), 1
    ):
        where = f"allocations row {row}"
        if not (np.isfinite(point) and point == int(point) and point > 0):
            raise ValueError(
                f"{where}, column complexity_points: {point!r} is not a whole number > 0"
            )
        if open_case[household] >= 0:
            raise ValueError(f"{where}, column household_id: household already has an open case")
        if not active[worker]:
            raise ValueError(f"{where}, column worker_id: worker is not active")
    duplicated = pd.Series(households).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated)) + 1
        raise ValueError(f"allocations row {row}, column household_id: household allocated twice")
    load = np.bincount(workers, weights=points, minlength=len(worker_ids))
    over = np.flatnonzero(load > remaining)
    if len(over):
        row = int(np.argmax(workers == over[0])) + 1
        raise ValueError(
            f"allocations row {row}, column worker_id: allocations exceed the worker's "
            f"remaining capacity ({int(remaining[over[0]])} points)"
        )
    return households, workers, points.astype(np.int64)


def _lookup(values: pd.Series, ids: np.ndarray, *, column: str) -> np.ndarray:
    """Row numbers of ids (sorted or not) for the given keys; ValueError on an unknown key."""
    index = pd.Index(ids)
    rows = index.get_indexer(values.astype("str"))
    if (rows < 0).any():
        row = int(np.argmax(rows < 0)) + 1
        raise ValueError(
            f"allocations row {row}, column {column}: unknown {column} {values.iloc[row - 1]!r}"
        )
    return rows


# ------------------------------------------------------------------------------ generation
def default_truth_dates(
    end: date, *, history_weeks: int = DEFAULT_HISTORY_WEEKS, count: int = DEFAULT_TRUTH_DATES
) -> list[date]:
    """As-of dates four weeks apart whose 26-week windows end on or before end, latest last.

    Only dates with at least 26 weeks of records before them are used.
    """
    last = end - timedelta(weeks=HORIZON_WEEKS)
    earliest = end - timedelta(weeks=history_weeks - HORIZON_WEEKS)
    dates = [last - timedelta(weeks=4 * step) for step in reversed(range(count))]
    return [value for value in dates if value >= earliest]


def _truth_weeks(as_of: Iterable[date], *, start: date) -> np.ndarray:
    """The week index each as-of date closes; ValueError if it is not a week end."""
    weeks = []
    for value in as_of:
        if not isinstance(value, date):
            raise ValueError(f"truth_as_of {value!r}: expected a date")
        offset = (value - start).days + 1
        if offset <= 0 or offset % 7:
            raise ValueError(
                f"truth_as_of {value.isoformat()}: as-of dates must be week ends of the simulation "
                f"(the same weekday as end, on or after {(start + timedelta(days=6)).isoformat()})"
            )
        weeks.append(offset // 7 - 1)
    if not weeks:
        raise ValueError("truth_as_of: at least one as-of date is needed")
    return np.array(sorted(set(weeks)), dtype=np.int64)


def generate_city(
    *,
    households: int = 110_000,
    seed: int = 0,
    end: date,
    under_reporting: UnderReporting | None = None,
    truth_as_of: Iterable[date] | None = None,
    history_weeks: int = DEFAULT_HISTORY_WEEKS,
    case_effect: float = 0.2,
) -> City:
    """Run the default city for history_weeks up to end and return its extract and truth.

    The extract holds what partners would have sent on `end`: events known by then, cases as
    they stood. The simulation runs on past `end` if an as-of window needs it, so `escalated` is
    always the realised outcome; nothing after `end` is in the extract.
    """
    if not isinstance(end, date):
        raise ValueError(f"end must be a date, not {end!r}")
    if history_weeks < 2 * HORIZON_WEEKS:
        raise ValueError(f"history_weeks must be at least {2 * HORIZON_WEEKS}, not {history_weeks}")
    start = end - timedelta(weeks=history_weeks) + timedelta(days=1)
    as_of = (
        default_truth_dates(end, history_weeks=history_weeks)
        if truth_as_of is None
        else truth_as_of
    )
    as_of_weeks = _truth_weeks(as_of, start=start)
    simulator = CitySimulator(
        households=households,
        seed=seed,
        start=start,
        under_reporting=under_reporting,
        case_effect=case_effect,
    )
    p_true = np.zeros((len(as_of_weeks), households))
    for week in range(max(history_weeks, int(as_of_weeks.max()) + 1 + HORIZON_WEEKS)):
        simulator._advance(None)
        if week in as_of_weeks:
            p_true[np.searchsorted(as_of_weeks, week)] = simulator.escalation_probability()
    return City(
        households=simulator.households(as_at=end),
        people=simulator.people(as_at=end),
        events=simulator.events(known_by=end),
        workers=simulator.workers(as_at=end),
        cases=simulator.cases(as_at=end),
        truth=_truth(simulator, as_of_weeks=as_of_weeks, p_true=p_true, start=start),
        start=start,
        end=end,
    )


def _truth(
    simulator: CitySimulator, *, as_of_weeks: np.ndarray, p_true: np.ndarray, start: date
) -> pd.DataFrame:
    """truth rows: p_true at each as-of week end and whether a crisis followed within 26 weeks."""
    crisis_weeks = simulator.crisis_weeks()
    escalated = np.zeros_like(p_true, dtype=bool)
    for position, week in enumerate(as_of_weeks.tolist()):
        for later in crisis_weeks[week + 1 : week + 1 + HORIZON_WEEKS]:
            escalated[position, later] = True
    as_of_days = to_day(start) + 7 * (as_of_weeks + 1) - 1
    return truth_frame(
        simulator.population, as_of_days=as_of_days, p_true=p_true, escalated=escalated
    )[list(TRUTH_COLUMNS)]


def write_city(city: City, out: Path, *, fmt: str = "csv") -> dict[str, Path]:
    """Write households, people, events, workers, cases and truth to out (csv or parquet)."""
    return write_tables(city.tables(), Path(out), fmt=fmt)


__all__ = [
    "City",
    "CitySimulator",
    "NeedDynamics",
    "TIER_NAMES",
    "default_truth_dates",
    "generate_city",
    "parse_under_reporting",
    "write_city",
]
