"""A synthetic Stoke-on-Trent: households, agencies' records and key workers, week by week.

`CitySimulator` holds a whole city and advances it one week at a time (`step`); `generate_city`
runs the default city to a given end date and returns a `City` (the contract tables plus the
truth); `write_city` writes them out. The private modules hold its parts: places, population,
need dynamics, events, signals, casework, calendar, random draws and the tables.
See docs/synthetic-city.md.
"""

from experiments.city._checks import MINIMUM_HOUSEHOLDS
from experiments.city._dynamics import TIER_NAMES, NeedDynamics
from experiments.city._generate import (
    DEFAULT_HISTORY_WEEKS,
    DEFAULT_TRUTH_DATES,
    City,
    default_truth_dates,
    generate_city,
    write_city,
)
from experiments.city._recording import parse_under_reporting
from experiments.city._simulator import CitySimulator
from experiments.city._views import HORIZON_WEEKS

__all__ = [
    "DEFAULT_HISTORY_WEEKS",
    "DEFAULT_TRUTH_DATES",
    "HORIZON_WEEKS",
    "MINIMUM_HOUSEHOLDS",
    "TIER_NAMES",
    "City",
    "CitySimulator",
    "NeedDynamics",
    "default_truth_dates",
    "generate_city",
    "parse_under_reporting",
    "write_city",
]
