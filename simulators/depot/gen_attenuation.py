"""Regenerate ``attenuation.json`` (mu/rho per material and energy) from XrayDB.

Run ``python -m simulators.depot.gen_attenuation`` (needs the ``train-image`` extra, which
brings ``xraydb``). The output is committed; the simulator itself only reads it.
"""

from __future__ import annotations

import argparse
import json

from simulators.depot.materials import COMPOSITIONS, ENERGIES_KEV, TABLE_PATH


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(TABLE_PATH), help="where to write the table")
    args = ap.parse_args(argv)
    import xraydb  # training-time only

    table: dict[str, list[float]] = {}
    for name, (_density, _z, comp) in COMPOSITIONS.items():
        row = []
        for e in ENERGIES_KEV:
            # mu/rho of a mixture is the mass-fraction weighted sum of its compounds'
            mu = sum(frac * float(xraydb.material_mu(formula, e * 1000.0, density=1.0))
                     for formula, frac in comp)
            row.append(round(mu, 5))
        table[name] = row
    doc = {"source": f"xraydb {xraydb.__version__} (Elam tables), coherent included",
           "units": "cm2/g", "energies_kev": list(ENERGIES_KEV), "mu_rho": table}
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"wrote {args.out}: {len(table)} materials x {len(ENERGIES_KEV)} energies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
