"""The knobs of the synthetic world: municipalities, intervention categories and how outcomes behave.

Everything the generator makes up is steered from here, as data, so that the realism can be
reviewed in one place: who gets which intervention (age, sex, need areas, legal basis, provider),
how severe things are at baseline, how much each category helps on average (its *true effect*),
who drops out (more often those who started worse off) and how long episodes last. Outcomes are
drawn on one latent problem scale ``z`` (higher is worse, standard-deviation units) and mapped to
each instrument through its code-list range, direction and reference SD, so an instrument added
to ``instruments.csv`` only needs a centre in ``INSTRUMENT_CENTRES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from isu.schemas import code_list

__all__ = [
    "Category",
    "CATEGORIES",
    "SODERTORN_POPULATION",
    "RURAL_RECORDS",
    "INSTRUMENT_CENTRES",
    "INSTRUMENT_DECIMALS",
    "ASI_BY_NEED",
    "EXPORT_DATE",
    "DEFAULT_SEED",
    "FIRST_START",
    "RECORDS_PER_INHABITANT",
    "local_codes",
]

#: The seed of the committed demo files.
DEFAULT_SEED = 2026
#: The day the exports were taken: nothing ends or is measured after it.
EXPORT_DATE = date(2025, 12, 31)
#: Episodes start from this day on.
FIRST_START = date(2023, 1, 2)
#: Followed records per inhabitant in the demo files (a few thousand across Södertörn).
RECORDS_PER_INHABITANT = 1 / 230

#: Södertörn (pool ``sodertorn``): municipality code -> inhabitants (rounded, realistic relative sizes).
SODERTORN_POPULATION = {
    "0126": 115_000, "0182": 110_000, "0181": 100_000, "0127": 95_000, "0136": 95_000,
    "0138": 50_000, "0120": 47_000, "0192": 29_000, "0128": 17_000, "0140": 11_000,
}
#: Rural Jämtland (pool ``jamtland_rural``): municipality code -> followed records (too few alone).
RURAL_RECORDS = {"2303": 14, "2305": 16, "2313": 28, "2326": 12, "2361": 24}

#: Latent ``z`` -> instrument value: value = centre + sign * reference_sd * z (sign from direction).
INSTRUMENT_CENTRES = {"severity04": 2.0, "wellbeing10": 5.5, "asi_alcohol": 0.35, "asi_drugs": 0.18}
#: Decimals an instrument is recorded with.
INSTRUMENT_DECIMALS = {"severity04": 0, "wellbeing10": 0, "asi_alcohol": 3, "asi_drugs": 3}
#: Substance use treatment measures these need areas with the ASI composite score instead.
ASI_BY_NEED = {"alcohol": "asi_alcohol", "drugs": "asi_drugs"}


@dataclass(frozen=True)
class Category:
    """How one national intervention category behaves in the synthetic world."""

    code: str
    weight: float  # share of episodes in a large municipality
    rural_weight: float  # share of episodes in a small rural one
    ages: tuple[int, int]  # age at start, inclusive
    female: float  # share of women/girls
    needs: dict[str, float]  # need area -> weight
    baseline: float  # mean latent severity z at T0
    effect: float  # true mean improvement T0 -> T1 in z units
    attrition: float  # share of ended episodes without T1
    months: tuple[int, int]  # planned duration
    external: float  # share with an external provider
    legal: dict[str, float]  # legal basis -> weight
    wellbeing: float = 0.0  # share of records measured on wellbeing10 rather than severity04
    follow_up: float = 0.15  # share of completers with a T2 (when time allows)
    deceased: float = 0.0  # share of drop-outs that ended because the client died

    @property
    def youth(self) -> bool:
        return self.ages[1] <= 20


SOL = {"SoL": 1.0}

CATEGORIES: tuple[Category, ...] = (
    Category("family_support", 14, 12, (3, 17), 0.45,
             {"family": 4, "school": 2, "mental_health": 2, "crime": 1, "violence": 1},
             0.5, 0.50, 0.15, (6, 12), 0.25, SOL, follow_up=0.35),
    Category("contact_person", 8, 12, (7, 20), 0.45,
             {"social_network": 4, "school": 2, "family": 2}, 0.3, 0.20, 0.12, (12, 24), 0.10,
             {"SoL": 0.85, "LSS": 0.15}),
    Category("foster_care", 5, 6, (0, 17), 0.50,
             {"family": 4, "school": 2, "mental_health": 2, "physical_health": 1}, 0.7, 0.30, 0.15,
             (12, 30), 0.50, {"SoL": 0.6, "LVU": 0.4}),
    Category("residential_care", 5, 4, (13, 20), 0.35,
             {"crime": 3, "drugs": 2, "mental_health": 3, "school": 2, "family": 1}, 0.9, 0.15, 0.30,
             (3, 12), 0.90, {"SoL": 0.55, "LVU": 0.45}),
    Category("supported_housing", 7, 5, (20, 70), 0.35,
             {"housing": 4, "mental_health": 2, "drugs": 1, "alcohol": 1}, 0.6, 0.35, 0.22, (6, 18),
             0.50, SOL, wellbeing=0.2),
    Category("housing_first", 3, 1, (25, 70), 0.30,
             {"housing": 5, "mental_health": 2, "drugs": 2, "alcohol": 2, "physical_health": 1},
             1.0, 0.60, 0.20, (12, 30), 0.30, SOL, wellbeing=0.3, follow_up=0.4, deceased=0.08),
    Category("substance_outpatient", 14, 16, (18, 75), 0.30,
             {"alcohol": 5, "drugs": 3, "gambling": 1}, 0.5, 0.45, 0.30, (3, 9), 0.20, SOL,
             follow_up=0.5, deceased=0.03),
    Category("substance_residential", 4, 5, (21, 70), 0.25, {"alcohol": 3, "drugs": 3}, 0.9, 0.55,
             0.28, (2, 6), 0.90, {"SoL": 0.8, "LVM": 0.2}, follow_up=0.5, deceased=0.05),
    Category("employment_support", 12, 12, (18, 64), 0.45,
             {"employment": 6, "income": 3, "mental_health": 1}, 0.5, 0.30, 0.25, (4, 12), 0.15, SOL,
             wellbeing=0.6),
    Category("parenting_programme", 8, 6, (22, 50), 0.75, {"parenting": 5, "family": 2}, 0.4, 0.60,
             0.15, (2, 4), 0.05, SOL),
    Category("violence_support", 7, 5, (18, 75), 0.85,
             {"violence": 6, "housing": 2, "mental_health": 2}, 0.7, 0.45, 0.25, (2, 8), 0.40,
             {"SoL": 0.95, "other": 0.05}, wellbeing=0.5),
    Category("case_management", 6, 4, (20, 75), 0.40,
             {"housing": 2, "mental_health": 3, "income": 2, "social_network": 2, "physical_health": 1},
             0.6, 0.25, 0.20, (6, 18), 0.10, SOL, wellbeing=0.3, deceased=0.03),
)


def local_codes() -> dict[str, list[str]]:
    """Category -> the local intervention codes that map to it (from ``intervention_mapping.csv``)."""
    out: dict[str, list[str]] = {}
    for row in code_list("intervention_mapping").rows:
        out.setdefault(row["category"], []).append(row["code"])
    return out
