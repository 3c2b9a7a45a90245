"""The synthetic city's people: households and their members (key workers: _workforce.py).

Everything is drawn at once with numpy over all households. A household's members are stored
oldest first in a padded (households, MAX_MEMBERS) birth-year matrix so that "an adult", "a child
aged 10 or over" or "a school-age child" at any date is a contiguous slice of that row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.city._places import WARDS, ward_ethnicity_mix, ward_locality_index
from features.contract import DISABILITY, ETHNICITIES, SEXES, TENURES

MAX_ADULTS = 4
MAX_CHILDREN = 5
MAX_MEMBERS = MAX_ADULTS + MAX_CHILDREN
NOT_A_MEMBER = 9999  # birth-year padding: sorts after every real member and is never "born"

# Hidden need domains: what a household's difficulties are about, and the key-worker skill each
# calls for first (the second skill is an acceptable alternative).
DOMAINS: tuple[str, ...] = (
    "debt",
    "domestic_abuse",
    "substance_misuse",
    "mental_health",
    "parenting",
    "offending",
)
DOMAIN_SKILLS: dict[str, tuple[str, str]] = {
    "debt": ("debt", "employment"),
    "domestic_abuse": ("domestic_abuse", "domestic_abuse"),
    "substance_misuse": ("substance_misuse", "mental_health"),
    "mental_health": ("mental_health", "substance_misuse"),
    "parenting": ("parenting", "school_attendance"),
    "offending": ("youth", "asb"),
}
SOCIAL_TENURES: tuple[str, ...] = ("council", "housing_association", "temporary")

_TENURE_EFFECT = {
    "council": 0.35,
    "housing_association": 0.30,
    "private_rent": 0.25,
    "owner": -0.45,
    "temporary": 0.90,
    "unknown": 0.10,
}


@dataclass(frozen=True)
class Population:
    """Static facts about every household and person (index = household or person row)."""

    household_id: np.ndarray
    ward: np.ndarray
    locality: np.ndarray
    tenure: np.ndarray
    propensity: np.ndarray
    domains: np.ndarray
    disabled_member: np.ndarray
    crisis_multiplier: np.ndarray
    weekly_rent: np.ndarray
    council_tax_instalment: np.ndarray
    member_birth_year: np.ndarray
    first_person: np.ndarray
    person_id: np.ndarray
    person_household: np.ndarray
    person_birth_year: np.ndarray
    person_sex: np.ndarray
    person_ethnicity: np.ndarray
    person_disability: np.ndarray
    reference_year: int

    @property
    def size(self) -> int:
        return len(self.household_id)


def _random_ids(rng: np.random.Generator, *, prefix: str, count: int) -> np.ndarray:
    """Unique pseudonymous keys like H3F09A1C2D7, the shape of a hashed reference."""
    codes = np.unique(rng.integers(16**9, 16**10, size=count + count // 10 + 16))
    if len(codes) < count:
        raise RuntimeError(f"could not draw {count} distinct {prefix} keys")
    codes = rng.permutation(codes)[:count]
    return np.array([f"{prefix}{code:010X}" for code in codes.tolist()], dtype=object)


def _draw_places(rng: np.random.Generator, households: int) -> tuple[np.ndarray, np.ndarray]:
    """Ward and tenure of every household; renting is commoner in the deprived wards."""
    size = np.array([ward.size for ward in WARDS])
    ward = rng.choice(len(WARDS), size=households, p=size / size.sum())
    deprivation = np.array([ward.deprivation for ward in WARDS])[ward]
    shares = np.column_stack(
        [
            0.03 + 0.20 * deprivation,  # council
            0.03 + 0.08 * deprivation,  # housing_association
            0.10 + 0.14 * deprivation,  # private_rent
            np.zeros(households),  # owner: the remainder
            0.001 + 0.008 * deprivation,  # temporary
            np.full(households, 0.015),  # unknown
        ]
    )
    shares[:, TENURES.index("owner")] = 1.0 - shares.sum(axis=1)
    tenure = (rng.random(households)[:, None] > np.cumsum(shares, axis=1)).sum(axis=1)
    return ward, np.minimum(tenure, len(TENURES) - 1)


def _draw_composition(
    rng: np.random.Generator, tenure: np.ndarray, deprivation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Adults (1-4) and children ever in the household during the simulated years."""
    households = len(tenure)
    adults = 1 + (rng.random(households)[:, None] > np.array([0.34, 0.84, 0.96])).sum(axis=1)
    social = np.isin(tenure, [TENURES.index(name) for name in SOCIAL_TENURES])
    has_children = rng.random(households) < 0.26 + 0.10 * social + 0.05 * deprivation
    extra = (rng.random(households)[:, None] > np.array([0.45, 0.80, 0.93, 0.98])).sum(axis=1)
    return adults, np.where(has_children, 1 + extra, 0)


def _draw_birth_years(
    rng: np.random.Generator,
    *,
    tenure: np.ndarray,
    adults: np.ndarray,
    children: np.ndarray,
    start_year: int,
) -> np.ndarray:
    """(households, MAX_MEMBERS) birth years, oldest first, padded with NOT_A_MEMBER."""
    households = len(tenure)
    mean_age = np.array([47.0, 45.0, 36.0, 56.0, 32.0, 45.0])[tenure]
    reference_age = rng.normal(mean_age, 14.0)
    reference_age = np.where(children > 0, rng.normal(36.0, 8.0, households), reference_age)
    reference_age = np.clip(np.rint(reference_age), 19, 92)
    ages = np.full((households, MAX_MEMBERS), -NOT_A_MEMBER, dtype=np.int64)
    ages[:, 0] = reference_age
    partner = np.maximum(18, reference_age + np.rint(rng.normal(0, 4, households)))
    grown_child = np.maximum(16, reference_age - 25 + np.rint(rng.normal(0, 4, households)))
    relative = np.minimum(95, reference_age + 28)
    extra_adult = np.where(reference_age >= 40, grown_child, relative)
    ages[:, 1] = np.where(adults >= 2, partner, ages[:, 1])
    for slot in (2, 3):
        ages[:, slot] = np.where(adults > slot, extra_adult + slot - 2, ages[:, slot])
    oldest_child = np.minimum(17, reference_age - 17)
    child_ages = rng.integers(-3, oldest_child[:, None] + 1, size=(households, MAX_CHILDREN))
    in_household = np.arange(MAX_CHILDREN)[None, :] < children[:, None]
    ages[:, MAX_ADULTS:] = np.where(in_household, child_ages, -NOT_A_MEMBER)
    birth_years = np.where(ages == -NOT_A_MEMBER, NOT_A_MEMBER, start_year - ages)
    return np.sort(birth_years, axis=1)


def _draw_people(
    rng: np.random.Generator,
    *,
    birth_years: np.ndarray,
    ward: np.ndarray,
    adults: np.ndarray,
    children: np.ndarray,
    deprivation: np.ndarray,
    start_year: int,
) -> dict[str, np.ndarray]:
    """Flat person rows (household order, oldest first) with their protected characteristics."""
    member = birth_years != NOT_A_MEMBER
    members = member.sum(axis=1)
    household = np.repeat(np.arange(len(ward)), members)
    birth_year = birth_years[member]
    count = len(birth_year)
    first = (np.cumsum(members) - members)[household]
    rank = np.arange(count) - first
    lone_parent = (adults == 1) & (children > 0)
    female_share = np.where(rank == 0, np.where(lone_parent[household], 0.9, 0.55), 0.5)
    female = rng.random(count) < female_share
    # Most partners are of the other sex to the reference person.
    is_partner = (rank == 1) & (start_year - birth_year >= 18) & (adults[household] >= 2)
    partner_female = ~female[first] ^ (rng.random(count) < 0.05)
    sex = np.where(
        np.where(is_partner, partner_female, female), SEXES.index("female"), SEXES.index("male")
    )
    sex_noise = rng.random(count)
    sex = np.where(sex_noise < 0.002, SEXES.index("other"), sex)
    sex = np.where((sex_noise >= 0.002) & (sex_noise < 0.006), SEXES.index("unknown"), sex)
    ethnicity = _draw_ethnicity(
        rng, household=household, ward=ward, rank=rank, birth_year=birth_year, start_year=start_year
    )
    age = start_year + 2 - birth_year
    disabled = rng.random(count) < np.where(
        age >= 18, 0.08 + 0.004 * np.maximum(age - 30, 0) + 0.12 * deprivation[household], 0.05
    )
    disability = np.where(disabled, DISABILITY.index("yes"), DISABILITY.index("no"))
    disability = np.where(rng.random(count) < 0.03, DISABILITY.index("unknown"), disability)
    return {
        "household": household,
        "birth_year": birth_year,
        "sex": sex,
        "ethnicity": ethnicity,
        "disability": disability,
    }


def _draw_ethnicity(
    rng: np.random.Generator,
    *,
    household: np.ndarray,
    ward: np.ndarray,
    rank: np.ndarray,
    birth_year: np.ndarray,
    start_year: int,
) -> np.ndarray:
    """ONS group per person: households mostly share one; some children of mixed heritage."""
    mix = ward_ethnicity_mix()
    households = len(ward)
    reference = (rng.random(households)[:, None] > np.cumsum(mix[ward], axis=1)).sum(axis=1)
    reference = np.minimum(reference, ETHNICITIES.index("other"))
    count = len(household)
    city_mix = mix.mean(axis=0)
    own = (rng.random(count)[:, None] > np.cumsum(city_mix)[None, :]).sum(axis=1)
    own = np.minimum(own, ETHNICITIES.index("other"))
    child = start_year + 2 - birth_year < 18
    differs = (rank > 0) & (rng.random(count) < 0.08)
    ethnicity = np.where(
        differs, np.where(child, ETHNICITIES.index("mixed"), own), reference[household]
    )
    return np.where(rng.random(count) < 0.015, ETHNICITIES.index("unknown"), ethnicity)


def _draw_needs(
    rng: np.random.Generator,
    *,
    tenure: np.ndarray,
    deprivation: np.ndarray,
    adults: np.ndarray,
    children: np.ndarray,
    disabled_member: np.ndarray,
    youngest_adult_age: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden propensity to need help (z) and the domains a household's difficulties are in."""
    households = len(tenure)
    tenure_effect = np.array([_TENURE_EFFECT[name] for name in TENURES])[tenure]
    propensity = (
        1.6 * (deprivation - 0.6)
        + tenure_effect
        + 0.45 * ((adults == 1) & (children > 0))
        + 0.25 * (children >= 3)
        + 0.25 * disabled_member
        + 0.20 * (youngest_adult_age < 25)
        + rng.normal(0.0, 0.6, households)
        - 0.30
    )
    renter = tenure != TENURES.index("owner")
    logits = np.column_stack(
        [
            -0.8 + 1.2 * propensity + 0.4 * renter,
            -2.6 + 1.0 * propensity + 0.5 * (children > 0),
            -2.8 + 1.0 * propensity,
            -1.6 + 0.8 * propensity + 0.5 * disabled_member,
            np.where(children > 0, -1.4 + 1.0 * propensity, -np.inf),
            -2.6 + 1.0 * propensity + 0.4 * (youngest_adult_age < 25),
        ]
    )
    domains = rng.random((households, len(DOMAINS))) < 1.0 / (1.0 + np.exp(-logits))
    return propensity, domains


def draw_population(rng: np.random.Generator, *, households: int, start_year: int) -> Population:
    """A whole city of households and people, ordered by (pseudonymous) household key."""
    ward, tenure = _draw_places(rng, households)
    deprivation = np.array([item.deprivation for item in WARDS])[ward]
    adults, children = _draw_composition(rng, tenure, deprivation)
    # Households are drawn independently, so handing out the sorted keys in row order is fair.
    household_id = np.sort(_random_ids(rng, prefix="H", count=households))
    birth_years = _draw_birth_years(
        rng, tenure=tenure, adults=adults, children=children, start_year=start_year
    )
    people = _draw_people(
        rng,
        birth_years=birth_years,
        ward=ward,
        adults=adults,
        children=children,
        deprivation=deprivation,
        start_year=start_year,
    )
    disabled_member = (
        np.bincount(
            people["household"],
            weights=people["disability"] == DISABILITY.index("yes"),
            minlength=households,
        )
        > 0
    )
    youngest_adult = start_year - np.where(start_year - birth_years >= 18, birth_years, 0).max(1)
    propensity, domains = _draw_needs(
        rng,
        tenure=tenure,
        deprivation=deprivation,
        adults=adults,
        children=children,
        disabled_member=disabled_member,
        youngest_adult_age=youngest_adult,
    )
    return _assemble_population(
        rng,
        household_id=household_id,
        ward=ward,
        tenure=tenure,
        propensity=propensity,
        domains=domains,
        disabled_member=disabled_member,
        adults=adults,
        birth_years=birth_years,
        people=people,
        start_year=start_year,
    )


def _assemble_population(
    rng: np.random.Generator,
    *,
    household_id: np.ndarray,
    ward: np.ndarray,
    tenure: np.ndarray,
    propensity: np.ndarray,
    domains: np.ndarray,
    disabled_member: np.ndarray,
    adults: np.ndarray,
    birth_years: np.ndarray,
    people: dict[str, np.ndarray],
    start_year: int,
) -> Population:
    """Money facts (rent, council tax) and the person keys, packed into a Population."""
    households = len(household_id)
    rent_range = {"council": (78, 105), "housing_association": (88, 125), "temporary": (110, 160)}
    weekly_rent = np.zeros(households)
    for name, (low, high) in rent_range.items():
        social = tenure == TENURES.index(name)
        weekly_rent[social] = np.round(rng.uniform(low, high, social.sum()), 2)
    single_discount = np.where(adults == 1, 0.75, 1.0)
    owner_uplift = np.where(tenure == TENURES.index("owner"), 1.15, 1.0)
    instalment = np.round(rng.uniform(95, 190, households) * single_discount * owner_uplift, 2)
    members = (birth_years != NOT_A_MEMBER).sum(axis=1)
    return Population(
        household_id=household_id,
        ward=ward,
        locality=ward_locality_index()[ward],
        tenure=tenure,
        propensity=propensity,
        domains=domains,
        disabled_member=disabled_member,
        crisis_multiplier=np.exp(0.25 * propensity + 0.15 * domains.sum(axis=1)),
        weekly_rent=weekly_rent,
        council_tax_instalment=instalment,
        member_birth_year=birth_years,
        first_person=np.cumsum(members) - members,
        person_id=_random_ids(rng, prefix="P", count=len(people["household"])),
        person_household=people["household"],
        person_birth_year=people["birth_year"],
        person_sex=people["sex"],
        person_ethnicity=people["ethnicity"],
        person_disability=people["disability"],
        reference_year=start_year,
    )
