"""Neighbor-list time for water boxes (3,000 atoms by default): vesin vs ASE's neighbor list.

Usage: python benchmarks/neighbor_list.py [--quick]   -> benchmarks/results/neighbor_list.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_time, water_box, write_result  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    args = p.parse_args()
    from ase.neighborlist import neighbor_list as ase_nl

    from lam_lab.nn.neighbor_list import neighbor_list

    rows = []
    for n_mol in ([1000] if args.quick else [64, 1000, 3334]):
        atoms = water_box(n_mol)
        pos, cell = atoms.positions, atoms.cell.array
        for rcut, sel in ((6.0, 120), (4.0, 48)):
            t = best_time(lambda: neighbor_list(pos, rcut, sel, cell, True, warn_dropped=False),
                          repeat=3 if args.quick else 5)
            t_ase = best_time(lambda: ase_nl("ij", atoms, rcut), repeat=1 if args.quick else 3)
            nl = neighbor_list(pos, rcut, None, cell, True)
            rows.append({"atoms": len(atoms), "rcut": rcut, "sel": sel, "lam_lab_ms": 1e3 * t, "ase_ms": 1e3 * t_ase,
                         "max_neighbors": int(nl.mask.sum(1).max())})
            print(f"{len(atoms):>6} atoms  rcut {rcut} Å  sel {sel}:  lam_lab (vesin + padding) {1e3 * t:8.1f} ms"
                  f"   ASE {1e3 * t_ase:8.1f} ms   max neighbors {rows[-1]['max_neighbors']}")
    main_row = next((r for r in rows if r["atoms"] in (3000, 3002) and r["rcut"] == 6.0), rows[0])
    write_result("neighbor_list", {"rows": rows, "water_3000_rcut6_ms": main_row["lam_lab_ms"], "quick": args.quick})


if __name__ == "__main__":
    main()
