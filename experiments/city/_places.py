"""The synthetic city's geography: Stoke-on-Trent's six towns and their wards.

Ward names are Stoke-on-Trent's 37 wards; the deprivation scores and minority-ethnic shares are
plausible values chosen for the simulation (not official statistics), so that the city has the
contrast between, say, Bentilee and Hanford & Trentham that real early-help teams see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import ETHNICITIES, LOCALITIES


@dataclass(frozen=True)
class Ward:
    """One ward: its town, relative size, deprivation (0 least, 1 most) and Asian share."""

    name: str
    locality: str
    size: float
    deprivation: float
    asian_share: float


WARDS: tuple[Ward, ...] = (
    Ward("Tunstall", "Tunstall", 1.5, 0.80, 0.08),
    Ward("Goldenhill & Sandyford", "Tunstall", 1.0, 0.60, 0.03),
    Ward("Great Chell & Packmoor", "Tunstall", 1.5, 0.45, 0.01),
    Ward("Little Chell & Stanfield", "Tunstall", 1.0, 0.65, 0.03),
    Ward("Bradeley & Chell Heath", "Tunstall", 1.0, 0.70, 0.01),
    Ward("Burslem Central", "Burslem", 1.0, 0.85, 0.11),
    Ward("Burslem Park", "Burslem", 1.0, 0.75, 0.14),
    Ward("Moorcroft", "Burslem", 1.0, 0.70, 0.06),
    Ward("Ford Green & Smallthorne", "Burslem", 1.0, 0.60, 0.03),
    Ward("Baddeley, Milton & Norton", "Burslem", 2.0, 0.35, 0.01),
    Ward("Sneyd Green", "Burslem", 1.0, 0.50, 0.04),
    Ward("Etruria & Hanley", "Hanley", 1.0, 0.90, 0.25),
    Ward("Hanley Park & Shelton", "Hanley", 1.5, 0.85, 0.49),
    Ward("Birches Head & Central Forest Park", "Hanley", 1.5, 0.60, 0.08),
    Ward("Joiner's Square", "Hanley", 1.0, 0.85, 0.21),
    Ward("Eaton Park", "Hanley", 1.0, 0.80, 0.04),
    Ward("Abbey Hulton & Townsend", "Hanley", 1.5, 0.85, 0.03),
    Ward("Bentilee & Ubberley", "Hanley", 1.5, 0.95, 0.03),
    Ward("Penkhull & Stoke", "Stoke", 1.0, 0.50, 0.11),
    Ward("Hartshill & Basford", "Stoke", 1.0, 0.45, 0.14),
    Ward("Boothen & Oak Hill", "Stoke", 1.0, 0.70, 0.28),
    Ward("Springfields & Trent Vale", "Stoke", 1.0, 0.55, 0.06),
    Ward("Hanford & Trentham", "Stoke", 2.0, 0.10, 0.04),
    Ward("Fenton East", "Fenton", 1.0, 0.75, 0.08),
    Ward("Fenton West & Mount Pleasant", "Fenton", 1.5, 0.70, 0.31),
    Ward("Blurton East", "Fenton", 1.0, 0.80, 0.03),
    Ward("Blurton West & Newstead", "Fenton", 1.5, 0.85, 0.03),
    Ward("Broadway & Longton East", "Longton", 1.0, 0.75, 0.08),
    Ward("Hollybush & Longton West", "Longton", 1.5, 0.70, 0.14),
    Ward("Lightwood North & Normacot", "Longton", 1.5, 0.55, 0.49),
    Ward("Meir Hay", "Longton", 1.0, 0.40, 0.04),
    Ward("Meir North", "Longton", 1.0, 0.80, 0.03),
    Ward("Meir Park", "Longton", 1.0, 0.15, 0.03),
    Ward("Meir South", "Longton", 1.0, 0.75, 0.03),
    Ward("Sandford Hill", "Longton", 1.0, 0.70, 0.08),
    Ward("Weston Coyney", "Longton", 1.0, 0.30, 0.01),
    Ward("Dresden & Florence", "Longton", 1.0, 0.65, 0.17),
)

# Stoke's 2021 census mix outside the Asian share, which varies by ward: mixed, black, other.
OTHER_ETHNIC_SHARES: dict[str, float] = {"mixed": 0.022, "black": 0.018, "other": 0.016}


def ward_locality_index() -> np.ndarray:
    """Index into LOCALITIES of each ward's town."""
    return np.array([LOCALITIES.index(ward.locality) for ward in WARDS], dtype=np.int64)


def ward_ethnicity_mix() -> np.ndarray:
    """(wards, ETHNICITIES) probabilities of a household reference person's ethnicity.

    Minority groups other than Asian are more common in the more central (more deprived) wards.
    """
    mix = np.zeros((len(WARDS), len(ETHNICITIES)))
    for row, ward in enumerate(WARDS):
        central = 0.6 + 0.8 * ward.deprivation
        mix[row, ETHNICITIES.index("asian")] = ward.asian_share
        for group, share in OTHER_ETHNIC_SHARES.items():
            mix[row, ETHNICITIES.index(group)] = share * central
        mix[row, ETHNICITIES.index("white")] = 1.0 - mix[row].sum()
    return mix
