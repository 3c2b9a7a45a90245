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
    Ward("Tunstall", "Tunstall", 1.5, 0.80, 0.06),
    Ward("Goldenhill & Sandyford", "Tunstall", 1.0, 0.60, 0.02),
    Ward("Great Chell & Packmoor", "Tunstall", 1.5, 0.45, 0.01),
    Ward("Little Chell & Stanfield", "Tunstall", 1.0, 0.65, 0.02),
    Ward("Bradeley & Chell Heath", "Tunstall", 1.0, 0.70, 0.01),
    Ward("Burslem Central", "Burslem", 1.0, 0.85, 0.08),
    Ward("Burslem Park", "Burslem", 1.0, 0.75, 0.10),
    Ward("Moorcroft", "Burslem", 1.0, 0.70, 0.04),
    Ward("Ford Green & Smallthorne", "Burslem", 1.0, 0.60, 0.02),
    Ward("Baddeley, Milton & Norton", "Burslem", 2.0, 0.35, 0.01),
    Ward("Sneyd Green", "Burslem", 1.0, 0.50, 0.03),
    Ward("Etruria & Hanley", "Hanley", 1.0, 0.90, 0.18),
    Ward("Hanley Park & Shelton", "Hanley", 1.5, 0.85, 0.35),
    Ward("Birches Head & Central Forest Park", "Hanley", 1.5, 0.60, 0.06),
    Ward("Joiner's Square", "Hanley", 1.0, 0.85, 0.15),
    Ward("Eaton Park", "Hanley", 1.0, 0.80, 0.03),
    Ward("Abbey Hulton & Townsend", "Hanley", 1.5, 0.85, 0.02),
    Ward("Bentilee & Ubberley", "Hanley", 1.5, 0.95, 0.02),
    Ward("Penkhull & Stoke", "Stoke", 1.0, 0.50, 0.08),
    Ward("Hartshill & Basford", "Stoke", 1.0, 0.45, 0.10),
    Ward("Boothen & Oak Hill", "Stoke", 1.0, 0.70, 0.20),
    Ward("Springfields & Trent Vale", "Stoke", 1.0, 0.55, 0.04),
    Ward("Hanford & Trentham", "Stoke", 2.0, 0.10, 0.03),
    Ward("Fenton East", "Fenton", 1.0, 0.75, 0.06),
    Ward("Fenton West & Mount Pleasant", "Fenton", 1.5, 0.70, 0.22),
    Ward("Blurton East", "Fenton", 1.0, 0.80, 0.02),
    Ward("Blurton West & Newstead", "Fenton", 1.5, 0.85, 0.02),
    Ward("Broadway & Longton East", "Longton", 1.0, 0.75, 0.06),
    Ward("Hollybush & Longton West", "Longton", 1.5, 0.70, 0.10),
    Ward("Lightwood North & Normacot", "Longton", 1.5, 0.55, 0.35),
    Ward("Meir Hay", "Longton", 1.0, 0.40, 0.03),
    Ward("Meir North", "Longton", 1.0, 0.80, 0.02),
    Ward("Meir Park", "Longton", 1.0, 0.15, 0.02),
    Ward("Meir South", "Longton", 1.0, 0.75, 0.02),
    Ward("Sandford Hill", "Longton", 1.0, 0.70, 0.06),
    Ward("Weston Coyney", "Longton", 1.0, 0.30, 0.01),
    Ward("Dresden & Florence", "Longton", 1.0, 0.65, 0.12),
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
