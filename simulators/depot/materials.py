"""Materials of parcel contents for the X-ray simulator: density and mass attenuation.

Each :class:`Material` has a density (g/cm3), a nominal effective Z (for the docs and the
tests, not used by the physics) and its mass attenuation coefficient mu/rho (cm2/g,
coherent scattering included) at the energies in :data:`ENERGIES_KEV`. The coefficients
come from ``attenuation.json`` beside this file, made from XrayDB (Elam tables) by
``python -m simulators.depot.gen_attenuation`` with each material's composition by mass;
the simulator only reads the committed table, so it needs no X-ray library at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

TABLE_PATH = Path(__file__).resolve().parent / "attenuation.json"

# (compound formula, mass fraction) per material; densities are of the material as it
# lies in the parcel (folded textile and tea leaves are mostly air).
COMPOSITIONS: dict[str, tuple[float, float, tuple[tuple[str, float], ...]]] = {
    # name: (density g/cm3, effective Z, composition by mass)
    "corrugated": (0.16, 6.6, (("C6H10O5", 0.92), ("CaCO3", 0.08))),
    "cardboard": (0.70, 6.8, (("C6H10O5", 0.88), ("CaCO3", 0.12))),
    "paper": (0.80, 8.0, (("C6H10O5", 0.80), ("CaCO3", 0.15), ("Al2Si2O5(OH)4", 0.05))),
    "banknote": (0.95, 6.9, (("C6H10O5", 0.97), ("TiO2", 0.01), ("C16H10N2O2", 0.02))),
    "textile": (0.30, 6.6, (("C6H10O5", 0.6), ("C10H8O4", 0.4))),
    "leather": (0.90, 6.9, (("C5H8NO2", 0.95), ("Cr2O3", 0.01), ("H2O", 0.04))),
    "rubber": (1.15, 6.5, (("C5H8", 0.75), ("CaCO3", 0.15), ("ZnO", 0.02), ("C", 0.08))),
    "foam": (0.05, 6.0, (("C8H8", 1.0),)),
    "tea": (0.35, 7.0, (("C6H10O5", 0.85), ("H2O", 0.08), ("K2O", 0.03), ("C5H8NO2", 0.04))),
    "water": (1.00, 7.4, (("H2O", 1.0),)),
    "oil": (0.92, 6.0, (("C18H34O2", 1.0),)),
    "cream": (1.05, 7.3, (("H2O", 0.7), ("C18H34O2", 0.25), ("TiO2", 0.02), ("C3H8O3", 0.03))),
    "pe": (0.93, 5.4, (("CH2", 1.0),)),
    "pet": (1.38, 6.6, (("C10H8O4", 1.0),)),
    "pc": (1.20, 6.3, (("C16H14O3", 1.0),)),
    "abs": (1.05, 5.8, (("C15H17N", 1.0),)),
    "pvc": (1.38, 14.0, (("C2H3Cl", 1.0),)),
    "epoxy": (1.20, 6.4, (("C21H25ClO5", 0.1), ("C18H21O3", 0.9))),
    "fr4": (1.85, 10.5, (("SiO2", 0.45), ("C18H21O3", 0.40), ("CaO", 0.08), ("Al2O3", 0.07))),
    "glass": (2.50, 11.6, (("SiO2", 0.72), ("Na2O", 0.14), ("CaO", 0.10), ("MgO", 0.04))),
    "silicon": (2.33, 14.0, (("Si", 1.0),)),
    "aluminium": (2.70, 13.0, (("Al", 1.0),)),
    "battery": (2.60, 18.0, (("LiCoO2", 0.35), ("C", 0.20), ("Cu", 0.12), ("Al", 0.08),
                             ("C3H4O3", 0.20), ("LiPF6", 0.05))),
    "alkaline": (3.00, 22.0, (("MnO2", 0.40), ("Zn", 0.25), ("KOH", 0.10), ("Fe", 0.20),
                              ("C", 0.05))),
    "ferrite": (4.90, 22.0, (("Fe2O3", 0.70), ("MnO", 0.2), ("ZnO", 0.1))),
    "steel": (7.87, 26.0, (("Fe", 0.98), ("C", 0.01), ("Mn", 0.01))),
    "copper": (8.96, 29.0, (("Cu", 1.0),)),
    "brass": (8.50, 29.5, (("Cu", 0.63), ("Zn", 0.37))),
    "cupronickel": (8.90, 28.5, (("Cu", 0.75), ("Ni", 0.25))),
    "silver": (10.49, 47.0, (("Ag", 0.925), ("Cu", 0.075))),
    "lead": (11.34, 82.0, (("Pb", 0.97), ("Sb", 0.03))),
    "gold": (19.32, 79.0, (("Au", 1.0),)),
}

# Two detector channels of a dual-energy line scanner: a thin front detector sees the
# soft part of the spectrum, a rear one behind a copper filter the hard part. Each channel
# is a weighted sum over energies, so thick objects harden the beam as in a real machine.
ENERGIES_KEV: tuple[float, ...] = (30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0, 120.0, 140.0)
LOW_WEIGHTS: tuple[float, ...] = (0.08, 0.27, 0.30, 0.22, 0.13, 0.0, 0.0, 0.0, 0.0)
HIGH_WEIGHTS: tuple[float, ...] = (0.0, 0.0, 0.0, 0.06, 0.14, 0.22, 0.28, 0.18, 0.12)


@dataclass(frozen=True, slots=True)
class Material:
    name: str
    density: float               # g/cm3
    z_eff: float                 # nominal effective atomic number (documentation)
    mu_rho: tuple[float, ...]    # cm2/g at ENERGIES_KEV

    def mu_per_mm(self) -> np.ndarray:
        """Linear attenuation per mm of this material at each energy (1/mm)."""
        return np.asarray(self.mu_rho, dtype=np.float64) * self.density / 10.0


@cache
def materials() -> dict[str, Material]:
    """All materials by name, read once from the committed attenuation table."""
    table = json.loads(TABLE_PATH.read_text("utf-8"))
    if tuple(table["energies_kev"]) != ENERGIES_KEV:
        raise ValueError(f"{TABLE_PATH}: energies differ from ENERGIES_KEV; regenerate it")
    out: dict[str, Material] = {}
    for name, (density, z_eff, _comp) in COMPOSITIONS.items():
        out[name] = Material(name, density, z_eff, tuple(table["mu_rho"][name]))
    return out


MATERIAL_NAMES: tuple[str, ...] = tuple(COMPOSITIONS)


def density(name: str) -> float:
    """Density of a material in g/cm3 (KeyError for an unknown name)."""
    return COMPOSITIONS[name][0]
