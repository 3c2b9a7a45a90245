"""Where the city's random numbers come from: sequential streams, or keyed common random numbers.

Every random draw of a simulated week goes through a `Draws` object and names the units it is for
(households, people or events), a stream (what the draw decides) and, for events, a slot.

- `StreamDraws` wraps one `numpy.random.Generator` and ignores units, streams and slots: each call
  takes the next numbers of the generator, exactly as the city always has (`generate_city` and
  every history are drawn this way, byte for byte).
- `KeyedDraws` makes each number a pure function of (seed, week, stream, unit, slot): a counter-
  based generator (the SplitMix64 output function on a key from `numpy.random.SeedSequence`).
  Two copies of a city that are treated differently then share every draw of every household
  whose state is the same: common random numbers. A household that gets a key worker in one
  policy and not in the other can only differ where its own state differs, never through the
  number of events other households had that week. Counts (Poisson, binomial) are drawn by
  inverse CDF from one uniform per unit, so a slightly higher rate gives the same or one more
  event, not a fresh draw.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

STREAMS: tuple[str, ...] = (
    "chain_crisis",
    "chain_tier",
    "chain_acute",
    "chain_case",
    "crisis_day",
    "crisis_kind",
    "incident_count",
    "incident_kind",
    "incident_day",
    "rent_missed",
    "rent_amount",
    "council_tax_missed",
    "council_tax_amount",
    "notice_served",
    "notice_day",
    "school_missed",
    "school_excluded",
    "school_exclusion_day",
    "event_person",
    "event_reported",
    "event_kept",
)
_SALT = 0x5EED_C0DE  # keeps keyed numbers apart from the city's sequential streams
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SLOT_BITS = np.uint64(24)
MAX_SLOT = (1 << 24) - 1


class Draws(Protocol):
    """Random numbers for named units; see the module docstring."""

    def random(
        self, units: np.ndarray, *, stream: str, slots: np.ndarray | None = None
    ) -> np.ndarray: ...

    def integers(
        self, high: int, units: np.ndarray, *, stream: str, slots: np.ndarray | None = None
    ) -> np.ndarray: ...

    def poisson(self, rates: np.ndarray, *, stream: str) -> np.ndarray: ...

    def binomial(
        self, trials: int, chance: np.ndarray, units: np.ndarray, *, stream: str
    ) -> np.ndarray: ...


class StreamDraws:
    """The next numbers of one generator, whoever they are for (the city's original streams)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def random(self, units, *, stream, slots=None) -> np.ndarray:
        return self.rng.random(len(units))

    def integers(self, high, units, *, stream, slots=None) -> np.ndarray:
        return self.rng.integers(0, high, size=len(units))

    def poisson(self, rates, *, stream) -> np.ndarray:
        return self.rng.poisson(rates)

    def binomial(self, trials, chance, units, *, stream) -> np.ndarray:
        return self.rng.binomial(trials, chance)


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (uint64 arithmetic wraps, as it should)."""
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


class KeyedDraws:
    """Uniforms that depend only on (seed, week, stream, unit, slot): common random numbers."""

    def __init__(self, *, seed: int, week: int) -> None:
        self.seed, self.week = int(seed), int(week)
        self._keys: dict[str, np.uint64] = {}

    def _key(self, stream: str) -> np.uint64:
        if stream not in self._keys:
            sequence = np.random.SeedSequence([_SALT, self.seed, self.week, STREAMS.index(stream)])
            self._keys[stream] = sequence.generate_state(1, dtype=np.uint64)[0]
        return self._keys[stream]

    def random(self, units, *, stream, slots=None) -> np.ndarray:
        units = np.asarray(units, dtype=np.int64)
        counter = units.astype(np.uint64) << _SLOT_BITS
        if slots is not None:
            counter |= np.asarray(slots, dtype=np.int64).clip(0, MAX_SLOT).astype(np.uint64)
        with np.errstate(over="ignore"):
            mixed = _mix(self._key(stream) + (counter + np.uint64(1)) * _GAMMA)
        return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def integers(self, high, units, *, stream, slots=None) -> np.ndarray:
        uniform = self.random(units, stream=stream, slots=slots)
        return np.minimum(np.floor(uniform * high), np.asarray(high) - 1).astype(np.int64)

    def poisson(self, rates, *, stream) -> np.ndarray:
        rates = np.asarray(rates, dtype=np.float64)
        uniform = self.random(np.arange(len(rates)), stream=stream)
        return _inverse_cdf(uniform, first=np.exp(-rates), ratio=lambda k: rates / k, last=None)

    def binomial(self, trials, chance, units, *, stream) -> np.ndarray:
        chance = np.clip(np.asarray(chance, dtype=np.float64), 0.0, 1.0)
        uniform = self.random(units, stream=stream)
        odds = chance / np.maximum(1.0 - chance, 1e-300)
        counts = _inverse_cdf(
            uniform,
            first=(1.0 - chance) ** trials,
            ratio=lambda k: odds * (trials - k + 1) / k,
            last=trials,
        )
        return np.where(chance >= 1.0, trials, counts)


def _inverse_cdf(uniform: np.ndarray, *, first: np.ndarray, ratio, last: int | None) -> np.ndarray:
    """The smallest k with CDF(k) > uniform, from P(0) and P(k) / P(k - 1) = ratio(k)."""
    count = np.zeros(len(uniform), dtype=np.int64)
    chance = np.array(first, dtype=np.float64)
    cumulative = chance.copy()
    rows = np.flatnonzero(uniform >= cumulative)
    k = 0
    # Stops when the tail is exhausted or, for rounding, when a term no longer adds anything.
    while len(rows) and (last is None or k < last):
        k += 1
        chance[rows] = chance[rows] * np.broadcast_to(ratio(k), chance.shape)[rows]
        cumulative[rows] += chance[rows]
        count[rows] = k
        still = uniform[rows] >= cumulative[rows]
        rows = rows[still & (chance[rows] > 0.0)]
    return count
