"""rxn-dft: FPS-chosen frames around each reaction, labelled ωB97X/6-31G(d) (PySCF) and GFN2-xTB (Δ-ML).

Per reaction: the NEB reactant, product and climbing image plus farthest-point picks from the
NEB bands and 300/600 K MD, the same number of frames for every reaction. Split (``info['split']``):
the whole Claisen rearrangement is the out-of-distribution ``test``; for every other reaction its
reactant, product and TS frames (the barrier-height check) and a seeded 10 % of the rest are ``val``,
the remainder ``train``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._common import label, provenance
from lam_lab.datasets._stages import BuildContext, stage
from lam_lab.datasets.reaction_paths import PathSampling, sample_reaction
from lam_lab.datasets.reactions import REACTIONS, get_reaction
from lam_lab.sampling.select import select_fps

NAME = "rxn-dft"
DESCRIPTION = ("≥300 frames around 10 organic reactions (FPS over NEB + MD), ωB97X/6-31G(d) PySCF labels "
               "plus GFN2-xTB labels on the same frames; Claisen rearrangement held out as OOD test")
TEST_REACTION = "claisen"
PER_REACTION = 32
VAL_FRACTION = 0.1
SAMPLING = PathSampling(md_temperatures=(300.0, 600.0), md_steps=300, md_interval=10)
QUICK_REACTIONS = ("hcn-hnc", "h2co-dissociation")


def _key_frames(frames: list[Frame]) -> list[int]:
    """Indices of the final NEB reactant, TS and product frames."""
    out = []
    for role in ("reactant", "ts", "product"):
        out += [i for i, f in enumerate(frames) if f.info.get("role") == role and "neb_iteration" not in f.info][:1]
    return out


def select(frames: list[Frame], n: int, seed: int) -> list[Frame]:
    """Reactant, TS, product, then ``n - 3`` farthest-point picks from the other candidates."""
    return [frames[i] for i in select_fps(frames, n, seed=seed, keep=_key_frames(frames))]


def assign_splits(frames: list[Frame], seed: int) -> None:
    """Write ``info['split']``: test for the held-out reaction, val for R/TS/P and ~10 % of the rest."""
    rng = np.random.default_rng(seed)
    for f in frames:
        if f.info["reaction"] == TEST_REACTION:
            f.info["split"] = "test"
        elif f.info.get("role") in ("reactant", "ts", "product") and "neb_iteration" not in f.info:
            f.info["split"] = "val"
        else:
            f.info["split"] = "val" if rng.random() < VAL_FRACTION else "train"


def candidates(ctx: BuildContext) -> list[Frame]:
    """The frames to label (geometry stage, cached): balanced per reaction, with splits."""
    names = QUICK_REACTIONS if ctx.quick else tuple(r.name for r in REACTIONS)
    per = 6 if ctx.quick else PER_REACTION
    cfg = SAMPLING if not ctx.quick else PathSampling(n_images=7, neb_steps=60, record_every=10,
                                                      md_temperatures=(300.0,), md_steps=40, md_interval=10)
    cfg = replace(cfg, seed=ctx.seed)

    def make() -> list[Frame]:
        out: list[Frame] = []
        for k, name in enumerate(names):
            pool = sample_reaction(ctx, get_reaction(name), cfg)
            chosen = select(pool, per, seed=ctx.seed + k)
            ctx.say(f"{name}: {len(pool)} candidates -> {len(chosen)} frames")
            out += [f.copy() for f in chosen]
        assign_splits(out, ctx.seed)
        return out

    return stage(ctx, "candidates", {"reactions": list(names), "per": per, "sampling": repr(cfg), "seed": ctx.seed,
                                     "test": TEST_REACTION, "val": VAL_FRACTION}, make)


def build(ctx: BuildContext) -> Dataset:
    """Candidates → DFT labels (slow, cached per frame) → GFN2-xTB labels on the same frames."""
    frames = candidates(ctx)
    ctx.say(f"{len(frames)} frames to label with ωB97X/6-31G(d)")
    dft = label(ctx, frames, "dft", threads=1)
    xtb = label(ctx, dft.frames, "gfn2-xtb")
    by_index = {dft.indices[j]: f for j, f in zip(xtb.indices, xtb.frames)}
    kept = [by_index[i] for i in sorted(by_index)]
    missing = [f"{frames[i].info['reaction']}:{frames[i].info.get('role', '')}" for i in range(len(frames))
               if i not in by_index and frames[i].info.get("role") in ("reactant", "ts", "product")]
    counts = {s: sum(f.info["split"] == s for f in kept) for s in ("train", "val", "test")}
    notes = (f"{__doc__.strip()}\nSplit counts: {counts}. Dropped (failed labels): {len(frames) - len(kept)}"
             + (f"; key frames missing: {missing}" if missing else "") + ".")
    prov = provenance(ctx, {dft.name: dft.provenance, xtb.name: xtb.provenance}, ("pyscf", "tblite", "rdkit"), notes)
    return Dataset(kept, NAME, prov)
