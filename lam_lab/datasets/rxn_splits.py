"""How rxn-dft's frames are split and kept: held-out reactions, seeded val frames, each geometry once, and the first
rxn-dft's paths (legacy frames) carried along."""

from __future__ import annotations

import zlib

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._stages import BuildContext

# one held-out reaction per kind: [3,3] shift, 6π electrocyclic, proton transfer, retro-ene, ring opening
TEST_REACTIONS = ("claisen", "hexatriene", "malonaldehyde", "retro-ene", "oxirane")
TS_WINDOW = 0.5  # eV
VAL_FRACTION = 0.1


def geometry_bytes(f: Frame) -> bytes:
    """A frame's elements and positions rounded to 1e-4 Å: equal for the same geometry."""
    return np.asarray(f.numbers).tobytes() + np.round(np.asarray(f.positions), 4).tobytes()


LEGACY = "legacy-paths.lamh5"  # the first rxn-dft: CI-NEB bands and MD of 10 reactions, both labels, in the cache dir


def legacy_frames(ctx: BuildContext) -> list[Frame]:
    """The first rxn-dft's 320 labelled frames (NEB bands + MD of 10 reactions) with no frame tagged ``ts``.

    Their NEB maxima were never verified saddles, so every NEB role becomes ``path`` (the old role is kept
    as ``neb_role``); the labels are the same ωB97X/6-31G(d) and GFN2-xTB levels, computed once.
    """
    from lam_lab.data.io.lamh5 import read_lamh5

    path = None if ctx.cache_dir is None else ctx.cache_dir / LEGACY
    if ctx.quick or path is None or not path.is_file():
        return []
    out = []
    for f in read_lamh5(path):
        g = f.copy()
        role = g.info.pop("role", None)
        if role is not None:
            g.info.update(role="path", neb_role=role)
        g.info["source"] = f"legacy-{g.info.get('source', 'path')}"
        g.info.pop("split", None)
        out.append(g)
    return out


def assign_splits(frames: list[Frame], seed: int) -> None:
    """Write ``info['split']``: test for held-out reactions, val for stationary points and ~10 % of the rest.

    Each reaction draws from its own seeded stream, so adding a reaction to the set moves no other reaction's
    frames between train and val."""
    streams: dict[str, np.random.Generator] = {}
    for f in frames:
        name = f.info["reaction"]
        if name in TEST_REACTIONS:
            f.info["split"] = "test"
        elif f.info.get("source") in ("xtb-stationary", "dft-stationary"):
            f.info["split"] = "val"
        else:
            rng = streams.setdefault(name, np.random.default_rng([seed, zlib.crc32(name.encode())]))
            f.info["split"] = "val" if rng.random() < VAL_FRACTION else "train"


def drop_repeated_geometries(frames: list[Frame]) -> tuple[list[Frame], int]:
    """Frames with each geometry once (to 1e-4 Å), and how many repeats were dropped.

    A repeat would sit in two splits at once (a legacy band end is an xTB minimum, an IRC's first frame is the
    xTB TS) or count twice in a score (Claisen's stationary points are DFT ones). The stationary-point frame wins,
    the DFT one first, so roles and splits stay those of the stationary points."""
    rank = {"dft-stationary": 0, "xtb-stationary": 1}
    order = sorted(range(len(frames)), key=lambda i: rank.get(frames[i].info.get("source"), 2))
    seen: set[bytes] = set()
    keep: set[int] = set()
    for i in order:
        key = geometry_bytes(frames[i])
        if key not in seen:
            seen.add(key)
            keep.add(i)
    return [f for i, f in enumerate(frames) if i in keep], len(frames) - len(keep)


def ts_energy_fraction(ds: Dataset, label_set: str, window: float = TS_WINDOW) -> float:
    """Fraction of frames within ``window`` eV of their reaction's TS energy (the ``ts``-role frame)."""
    ts_e = {f.info["reaction"]: f.labels[label_set].energy for f in ds if f.info.get("role") == "ts"}
    near = [abs(f.labels[label_set].energy - ts_e[f.info["reaction"]]) <= window
            for f in ds if f.info["reaction"] in ts_e]
    return float(np.mean(near)) if near else 0.0
