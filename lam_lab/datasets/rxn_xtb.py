"""rxn-xtb: GFN2-xTB pre-training frames of C/H/N/O chemistry, in the spirit of RXN-xTB (seed 000).

Per reaction (10, see :mod:`lam_lab.datasets.reactions`): CI-NEB final and intermediate bands plus
Langevin MD at 300/600/1000 K started from reactant, TS and product, thinned by farthest-point
sampling to ``PER_REACTION`` frames (reactant, TS and product always kept). Plus MD of 32 small
stable molecules at 300/600/1000 K. ``info``: system (reaction or molecule name), reaction or
molecule, source ("neb", "md", "molecule-md"), temperature (K, MD), role (reactant/ts/product/path).
"""

from __future__ import annotations

from dataclasses import replace

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._common import label, provenance
from lam_lab.datasets._stages import BuildContext, stage
from lam_lab.datasets.reaction_paths import PathSampling, sample_reaction
from lam_lab.datasets.reactions import MOLECULES, REACTIONS, get_reaction
from lam_lab.sampling.select import select_fps

NAME = "rxn-xtb"
DESCRIPTION = ("≥3,000 GFN2-xTB frames of C/H/N/O: NEB paths + hot MD around 10 organic reactions "
               "(Diels-Alder, Claisen, HCN/HNC, ...) and MD of 32 small molecules at 300-1000 K")
PER_REACTION = 300
TEMPERATURES = (300.0, 600.0, 1000.0)
SAMPLING = PathSampling(md_temperatures=TEMPERATURES, md_steps=500, md_interval=10)
MOLECULE_STEPS = 300
MOLECULE_INTERVAL = 15


def _key_frames(frames: list[Frame]) -> list[int]:
    """Indices of the final NEB reactant, TS and product frames."""
    out = []
    for role in ("reactant", "ts", "product"):
        out += [i for i, f in enumerate(frames) if f.info.get("role") == role and "neb_iteration" not in f.info][:1]
    return out


def select(frames: list[Frame], n: int, seed: int) -> list[Frame]:
    """Reactant, TS, product, then ``n - 3`` farthest-point picks from the other candidates."""
    return [frames[i] for i in select_fps(frames, n, seed=seed, keep=_key_frames(frames))]


def reaction_frames(ctx: BuildContext) -> list[Frame]:
    """FPS-thinned NEB + MD frames of every reaction."""
    names = ("hcn-hnc",) if ctx.quick else tuple(r.name for r in REACTIONS)
    cfg = SAMPLING if not ctx.quick else PathSampling(n_images=5, neb_steps=20, record_every=5,
                                                      md_temperatures=(600.0,), md_steps=30, md_interval=10)
    cfg = replace(cfg, seed=ctx.seed)
    per = 10 if ctx.quick else PER_REACTION
    out: list[Frame] = []
    for k, name in enumerate(names):
        pool = sample_reaction(ctx, get_reaction(name), cfg)
        chosen = select(pool, per, seed=ctx.seed + k)
        ctx.say(f"{name}: {len(pool)} candidates -> {len(chosen)} frames")
        for f in chosen:
            g = f.copy()
            g.info["system"] = name
            out.append(g)
    return out


def molecule_frames(ctx: BuildContext) -> list[Frame]:
    """Langevin MD snapshots (GFN2-xTB) of each small molecule at each temperature (cached stage)."""
    from lam_lab.sampling.md import MDConfig, run_md
    from lam_lab.sampling.molecules import smiles_to_atoms
    from lam_lab.sampling.neb import relax, xtb_calculator

    mols = dict(list(MOLECULES.items())[:2]) if ctx.quick else MOLECULES
    temps = TEMPERATURES[:1] if ctx.quick else TEMPERATURES
    steps = 30 if ctx.quick else MOLECULE_STEPS

    def make() -> list[Frame]:
        out: list[Frame] = []
        for m_i, (name, smi) in enumerate(mols.items()):
            # MMFF94 misplaces some bonds (C=O of CO2 at 1.40 Å): start MD from the xTB minimum
            atoms = relax(smiles_to_atoms(smi, seed=ctx.seed)[0], xtb_calculator, fmax=0.02, steps=300)
            for t_i, temp in enumerate(temps):
                run = run_md(atoms, xtb_calculator, temp, MDConfig(steps=steps, interval=MOLECULE_INTERVAL),
                             seed=ctx.seed + 10 * m_i + t_i)
                if run.stopped:
                    ctx.say(f"MD {name} at {temp:.0f} K stopped after {run.steps_done} steps: {run.stopped}")
                out += [Frame(a.numbers, a.positions, None, [False] * 3, {},
                              {"system": name, "molecule": name, "smiles": smi, "charge": int(atoms.info["charge"]),
                               "source": "molecule-md", "temperature": float(temp), "md_step": int(a.info["md_step"])})
                        for a in run.frames]
        return out

    return stage(ctx, "molecules", {"molecules": mols, "temperatures": list(temps), "steps": steps,
                                    "interval": MOLECULE_INTERVAL, "seed": ctx.seed, "start": "gfn2-xtb minimum"}, make)


def build(ctx: BuildContext) -> Dataset:
    """Reaction and molecule frames (cached stages) → GFN2-xTB labels."""
    rx = stage(ctx, "reactions", {"per": PER_REACTION, "sampling": repr(SAMPLING), "seed": ctx.seed, "quick": ctx.quick},
               lambda: reaction_frames(ctx))
    mol = molecule_frames(ctx)
    ctx.say(f"{len(rx)} reaction frames + {len(mol)} molecule frames")
    xtb = label(ctx, rx + mol, "gfn2-xtb")
    notes = f"{__doc__.strip()}\nDropped (failed labels): {len(xtb.failures)}."
    return Dataset(xtb.frames, NAME, provenance(ctx, {xtb.name: xtb.provenance}, ("tblite", "rdkit"), notes))
