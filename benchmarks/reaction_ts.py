"""Transition states of the built-in reactions: GFN2-xTB (verified) and ωB97X/6-31G(d) barriers, next to the literature.

Per reaction: whether the xTB TS verified (one imaginary mode, IRC to both minima), the xTB barrier,
the DFT barrier at the DFT-refined TS (DFT minima), the DFT energy at the xTB TS (same DFT reactant),
the imaginary frequency at each level, wall times, and a published barrier where one exists.
Reads the rxn-dft build stages (``python -m lam_lab.datasets.rxn_dft frames`` / ``ts`` make them);
``--compute`` runs missing xTB searches, ``--quick`` runs HCN⇌HNC at xTB only.

Usage: python benchmarks/reaction_ts.py [--quick] [--cache-dir data-build/rxn-dft]
    -> benchmarks/results/reaction_ts.json (list ``reactions``)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

KCAL = 0.0433641  # eV per kcal/mol
# Experimental Arrhenius activation energies (gas phase) of the same reactions. They include zero-point
# and thermal effects, so they compare with an electronic barrier only to ~0.1 eV.
LITERATURE = {
    "diels-alder": (27.5, "Ea, Rowley & Steiner, Discuss. Faraday Soc. 10, 198 (1951)"),
    "cope": (33.5, "Ea, Doering, Toscano & Beasley, Tetrahedron 27, 5299 (1971)"),
    "cyclobutene": (32.9, "Ea, Cooper & Walters, J. Am. Chem. Soc. 80, 4220 (1958)"),
    "claisen": (30.6, "Ea, Schuler & Murphy, J. Am. Chem. Soc. 72, 3155 (1950)"),
    "h-shift-15": (36.3, "Ea, Roth & König, Liebigs Ann. Chem. 699, 24 (1966)"),
    "methyl-isocyanide": (38.4, "Ea, Schneider & Rabinovitch, J. Am. Chem. Soc. 84, 4215 (1962)"),
}


def _row(ctx, name: str, compute: bool) -> dict:
    """One reaction's figures from the cached TS stages (None where a stage has not run)."""
    from lam_lab.datasets.reactions import get_reaction
    from lam_lab.datasets.ts_sampling import (
        DFT_FIRST,
        TSSearchFailed,
        dft_first_ts,
        dft_ts_cached,
        xtb_ts,
        xtb_ts_cached,
    )

    rx = get_reaction(name)
    row = {"name": name, "description": rx.description, "verified": False}
    try:
        low = xtb_ts(ctx, rx) if compute else xtb_ts_cached(ctx, rx)
    except TSSearchFailed as exc:
        return {**row, "xtb_status": f"search failed: {exc}"}
    if low is None:
        return {**row, "xtb_status": "not run"}
    row.update({"verified": low.verified, "xtb_status": low.status, "xtb_barrier_eV": low.barrier,
                "xtb_reaction_energy_eV": low.reaction_energy, "xtb_imag_cm1": low.imaginary_frequencies,
                "xtb_seconds": low.provenance.get("seconds"), "xtb_irc_frames": len(low.irc)})
    if name in LITERATURE:
        kcal, source = LITERATURE[name]
        row.update({"published_barrier_eV": round(kcal * KCAL, 3), "published_source": source})
    if name in DFT_FIRST:  # no concerted xTB saddle: searched at the DFT level (with a DFT IRC)
        high = dft_first_ts(ctx, rx, cached_only=True)
        row["dft_status"] = "DFT-first search not finished"
        if high is not None:
            row.update({"dft_status": high.status, "dft_barrier_eV": high.barrier, "dft_search": "dft-first",
                        "dft_imag_cm1": high.imaginary_frequencies, "dft_irc_connects": high.irc_connects,
                        "dft_seconds": high.provenance.get("seconds")})
        return row
    high = dft_ts_cached(ctx, rx, low) if low.verified else None
    if high is not None:
        row.update({"dft_status": high.status, "dft_barrier_eV": high.barrier,
                    "dft_reaction_energy_eV": high.reaction_energy,
                    "dft_imag_cm1": high.imaginary_frequencies, "dft_seconds": high.provenance.get("seconds"),
                    "dft_mode_overlap": high.provenance.get("mode_overlap_with_lower_level"),
                    "dft_energy_at_xtb_ts_eV": _dft_at(ctx, low.ts) - float(high.reactant.get_potential_energy())})
    return row


def _dft_at(ctx, atoms) -> float:
    """ωB97X/6-31G(d) energy (eV) of ``atoms`` through the build's label cache (computed if missing)."""
    from lam_lab.data.frame import Frame
    from lam_lab.labelers import get_labeler

    frame = Frame(atoms.numbers, atoms.positions, None, [False] * 3, {}, {"charge": int(atoms.info.get("charge", 0))})
    lab = get_labeler("dft", threads=1)
    res = lab.label([frame], cache_dir=ctx.label_cache(), progress=False)
    return float(res.frames[0].labels[lab.name].energy)


def markdown(rows: list[dict]) -> str:
    """The README table of the results rows."""

    def num(r: dict, key: str, fmt: str = "{:.2f}") -> str:
        return fmt.format(r[key]) if r.get(key) is not None else "—"

    out = ["| reaction | xTB TS | xTB barrier | ν‡ xTB (cm⁻¹) | DFT TS | DFT barrier | DFT at the xTB TS | published |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        xtb_ok = "verified" if r["verified"] else r.get("xtb_status", "—").replace("_", " ")
        nu = f"{abs(r['xtb_imag_cm1'][0]):.0f}i" if r.get("xtb_imag_cm1") and r["verified"] else "—"
        pub = f"{r['published_barrier_eV']:.2f}" if "published_barrier_eV" in r else "—"
        out.append(f"| {r['name']} | {xtb_ok} | {num(r, 'xtb_barrier_eV') if r['verified'] else '—'} | {nu} | "
                   f"{r.get('dft_status', 'pending' if r['verified'] else '—').replace('_', ' ')} | "
                   f"{num(r, 'dft_barrier_eV')} | "
                   f"{num(r, 'dft_energy_at_xtb_ts_eV')} | {pub} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from lam_lab import datasets
    from lam_lab.datasets.reactions import REACTIONS
    from lam_lab.datasets.rxn_dft import BuildContext

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="HCN⇌HNC at GFN2-xTB only, in a temporary cache")
    p.add_argument("--cache-dir", default=str(datasets.default_cache_dir("rxn-dft")))
    p.add_argument("--compute", action="store_true", help="run xTB TS searches missing from the cache")
    p.add_argument("--markdown", action="store_true", help="also print the README table")
    args = p.parse_args(argv)
    if args.quick:
        import tempfile

        ctx = BuildContext("rxn-dft", Path(tempfile.mkdtemp(prefix="lam_lab-ts-")), 1, True, 0, False)
        rows = [_row(ctx, "hcn-hnc", compute=True)]
    else:
        ctx = BuildContext("rxn-dft", Path(args.cache_dir), 1, False, datasets.DEFAULT_SEED, False)
        rows = [_row(ctx, r.name, args.compute) for r in REACTIONS]
    for r in rows:
        dft = r.get("dft_barrier_eV")
        print(f"{r['name']:<28} {'verified' if r['verified'] else r['xtb_status']:<22} "
              f"xTB {r.get('xtb_barrier_eV', float('nan')):6.3f} eV  "
              f"DFT {dft if dft is not None else float('nan'):6.3f} eV  "
              f"published {r.get('published_barrier_eV', '—')}")
    if args.markdown:
        print(markdown(rows))
    n_ok = sum(r["verified"] for r in rows)
    n_dft = sum(r.get("dft_status") == "verified" for r in rows)
    write_result("reaction_ts-quick" if args.quick else "reaction_ts",
                 {"reactions": rows, "n_reactions": len(rows), "n_verified_xtb": n_ok, "n_verified_dft": n_dft,
                  "cache": "temporary" if args.quick else os.path.relpath(args.cache_dir)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
