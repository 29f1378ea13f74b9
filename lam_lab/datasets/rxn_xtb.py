"""rxn-xtb: GFN2-xTB pre-training frames of C/H/N/O chemistry, centred on verified transition states.

Every built-in reaction (:mod:`lam_lab.datasets.reactions`, 45) is one of two kinds:

* TS-centred (each reaction whose GFN2-xTB saddle verified: one imaginary mode, IRC to both minima):
  the xTB reactant, TS and product, IRC frames, thermal normal-mode displacements of the TS, MD
  launched from the TS at 300-1000 K and near-minimum frames (normal modes, 300/600 K MD), i.e.
  rxn-dft's candidate pool (its cached stages are read, never written) plus a second pool of TS
  modes and TS MD of this set's own, farthest-point selected to ``PER_REACTION`` frames with
  >= ``TS_FRACTION`` of them within ``TS_WINDOW`` eV of the TS. The saddle is the one frame with
  role ``ts`` (the TS of ``transition-states.json``, level xtb).
* Path-sampled (the reactions whose xTB TS search did not verify, e.g. its IRC ends elsewhere or
  GFN2-xTB has no concerted saddle): CI-NEB final and intermediate bands plus Langevin MD at
  300/600/1000 K from the band's reactant, maximum and product, thinned to ``PER_PATH_REACTION``.
  These are kept as data, but NO frame is tagged ``ts``: the band maximum is role ``path-max``
  with ``info['note']`` saying why it is not a transition state. A reaction whose band ends do not
  have its bond graphs (the path samples another structure) is left out, with the reason in the notes.

Plus Langevin MD of 32 small stable molecules at 300/600/1000 K. ``info`` of every frame: system,
source, temperature (K; 0 for static frames: stationary points, IRC and NEB images), role
(reactant/ts/product/path-max/path/thermal/molecule), split, and reaction (reaction frames) or
molecule. Split as rxn-dft: whole ``TEST_REACTIONS`` are ``test``; stationary points and a seeded
10 % of the rest ``val``; the remainder ``train``.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, replace

import numpy as np
from ase.calculators.calculator import CalculationFailed

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._common import label, provenance
from lam_lab.datasets._stages import BuildContext, stage, stage_key
from lam_lab.datasets.reaction_paths import PathSampling, ends_mismatch, sample_reaction
from lam_lab.datasets.reactions import MOLECULES, REACTIONS, Reaction, get_reaction
from lam_lab.datasets.rxn_dft import TS_FRACTION
from lam_lab.datasets.rxn_splits import TEST_REACTIONS, TS_WINDOW, VAL_FRACTION, drop_repeated_geometries
from lam_lab.datasets.ts_sampling import DFT_FIRST, TSSampling, TSSearchFailed, candidates, select_frames, xtb_ts
from lam_lab.sampling.select import select_fps

NAME = "rxn-xtb"
DESCRIPTION = ("14,278 GFN2-xTB frames of C/H/N/O: IRC, TS normal modes, MD from the TS and near-minimum frames "
               "around the 40 verified GFN2-xTB saddles of the 45 built-in reactions (the only frames tagged ts), "
               "CI-NEB path + MD of 4 without one (formic-acid-dimer left out: xTB fails on its path), "
               "and MD of 32 small molecules at 300-1000 K")
SHARED = "rxn-dft"  # whose cached xTB TS searches and candidate pools are read (never written)
PER_REACTION = 280  # TS-centred frames per verified reaction
PER_PATH_REACTION = 300  # NEB + MD frames per reaction without a verified xTB TS
TEMPERATURES = (300.0, 600.0, 1000.0)
SAMPLING = PathSampling(md_temperatures=TEMPERATURES, md_steps=500, md_interval=10)
# rxn-dft's pools hold 75-420 frames within TS_WINDOW of the TS; PER_REACTION frames need more near it
EXTRA = TSSampling(ts_mode_samples=32, min_mode_temperatures=(), min_md_temperatures=(),
                   ts_md_temperatures=(300.0, 600.0), ts_md_runs=2, ts_md_steps=60, ts_md_interval=2)
MOLECULE_STEPS = 300
MOLECULE_INTERVAL = 15
QUICK_VERIFIED = ("hcn-hnc",)
QUICK_PATH = ("formamide",)
STATIC = 0.0  # the temperature of frames that are not thermal samples
ROLE_OF_SOURCE = {"irc": "path", "neb": "path", "ts-modes": "thermal", "ts-md": "thermal", "min-modes": "thermal",
                  "min-md": "thermal", "md": "thermal", "molecule-md": "molecule"}


def _seed(ctx: BuildContext, name: str) -> int:
    """A per-reaction seed (by name, so adding a reaction leaves the others' picks as they were)."""
    return ctx.seed + zlib.crc32(name.encode()) % 10_000


def _shared(ctx: BuildContext) -> BuildContext | None:
    """A context on rxn-dft's build cache, used only to read stages it has already written."""
    from lam_lab import datasets

    if ctx.cache_dir is None:
        return None
    return BuildContext(SHARED, datasets.default_cache_dir(SHARED), ctx.workers, False, ctx.seed, ctx.progress)


def transition_state(ctx: BuildContext, reaction: Reaction):
    """(xTB TSResult or None, status): rxn-dft's cached search when there is one, else this set's own.

    A ``DFT_FIRST`` reaction (GFN2-xTB has no concerted saddle) never counts as verified here.
    """
    shared = _shared(ctx)
    try:
        res = xtb_ts(shared, reaction, cached_only=True) if shared is not None else None
        if res is None:
            res = xtb_ts(ctx, reaction)
    except TSSearchFailed as exc:
        return None, f"search failed: {exc}"
    if reaction.name in DFT_FIRST:
        return None, f"{res.status}: no concerted GFN2-xTB saddle (its TS is searched at the DFT level, rxn-dft)"
    return res, res.status


def _sampling(ctx: BuildContext) -> TSSampling:
    """rxn-dft's pool settings (so its cached pools are found), tiny in quick mode."""
    if ctx.quick:
        return TSSampling(ts_mode_temperatures=(300.0,), ts_mode_samples=4, min_mode_temperatures=(300.0,),
                          min_mode_samples=2, ts_md_temperatures=(600.0,), ts_md_runs=1, ts_md_steps=8,
                          ts_md_interval=2, min_md_temperatures=(), seed=ctx.seed)
    return TSSampling(seed=ctx.seed)


def shared_pool(ctx: BuildContext, reaction: Reaction, ts) -> list[Frame]:
    """The reaction's candidate pool: rxn-dft's cached stage when present (same key), else built here."""
    from lam_lab.data.io.lamh5 import read_lamh5

    cfg, shared = _sampling(ctx), _shared(ctx)
    name = f"ts-candidates-{reaction.name}"
    params = {"reaction": reaction.name, "ts": ts.ts.positions.round(5).tolist(), "sampling": asdict(cfg)}
    path = None if shared is None else shared.cache_dir / "stages" / f"{name}-{stage_key(name, params)}.lamh5"
    if path is not None and path.is_file():
        return list(read_lamh5(path).frames)
    return candidates(ctx, reaction, ts, cfg)


def extra_pool(ctx: BuildContext, reaction: Reaction, ts) -> list[Frame]:
    """More TS normal-mode and TS-MD candidates (own seed, own cache); its IRC and stationary points dropped."""
    if ctx.quick:
        return []
    pool = candidates(ctx, reaction, ts, replace(EXTRA, seed=ctx.seed + 1))
    return [f for f in pool if f.info["source"] not in ("irc", "xtb-stationary")]


def ts_centred(ctx: BuildContext, reaction: Reaction, ts) -> list[Frame]:
    """Selected frames of a reaction with a verified xTB TS; the saddle is role ``ts``."""
    pool = shared_pool(ctx, reaction, ts) + extra_pool(ctx, reaction, ts)
    per = 12 if ctx.quick else PER_REACTION
    chosen = select_frames(pool, per, TS_WINDOW, TS_FRACTION, seed=_seed(ctx, reaction.name))
    for f in chosen:
        f.info.update(ts_status="verified", xtb_barrier=float(ts.barrier))
        if f.info.get("role") == "xtb-ts":
            f.info["role"] = "ts"
    ctx.say(f"{reaction.name}: TS verified, {len(pool)} candidates -> {len(chosen)} frames")
    return chosen


def _key_frames(frames: list[Frame]) -> list[int]:
    """Indices of the final NEB reactant, band maximum and product frames."""
    out = []
    for role in ("reactant", "ts", "product"):
        out += [i for i, f in enumerate(frames) if f.info.get("role") == role and "neb_iteration" not in f.info][:1]
    return out


def select(frames: list[Frame], n: int, seed: int) -> list[Frame]:
    """Reactant, band maximum, product, then ``n - 3`` farthest-point picks from the other candidates."""
    return [frames[i].copy() for i in select_fps(frames, min(n, len(frames)), seed=seed, keep=_key_frames(frames))]


def path_sampled(ctx: BuildContext, reaction: Reaction, status: str) -> tuple[list[Frame], str | None]:
    """NEB + MD frames of a reaction whose xTB TS did not verify; its band maximum is ``path-max``, never ``ts``.

    Returns (frames, why left out): no frames when the band's ends are not the reaction's minima (bond graphs).
    """
    cfg = SAMPLING if not ctx.quick else PathSampling(n_images=5, neb_steps=20, record_every=5,
                                                      md_temperatures=(600.0,), md_steps=30, md_interval=10)
    try:
        pool = sample_reaction(ctx, reaction, replace(cfg, seed=ctx.seed))
    except CalculationFailed as exc:  # e.g. xTB's SCF on a band image: no path to sample, the others go on
        ctx.say(f"{reaction.name}: TS not verified ({status}) and its path sampling failed ({exc}): reaction left out")
        return [], f"left out: GFN2-xTB failed while sampling its path ({exc})"
    wrong = ends_mismatch(reaction, pool)
    if wrong:
        ctx.say(f"{reaction.name}: TS not verified ({status}) and {wrong}: reaction left out")
        return [], f"left out: {wrong}, so its path and MD sample another structure"
    chosen = select(pool, 10 if ctx.quick else PER_PATH_REACTION, seed=_seed(ctx, reaction.name))
    for f in chosen:
        f.info["ts_status"] = status
        if f.info.get("role") == "ts":
            f.info["role"] = "path-max"
            f.info["note"] = (f"highest CI-NEB image, not a transition state: the GFN2-xTB TS search gave "
                              f"'{status}' (one imaginary mode and an IRC to both minima are required)")
    ctx.say(f"{reaction.name}: TS not verified ({status}), {len(pool)} path candidates -> {len(chosen)} frames")
    return chosen, None


def reaction_frames(ctx: BuildContext) -> tuple[list[Frame], dict[str, str]]:
    """Frames of every reaction and each reaction's xTB TS status ("verified" or why not)."""
    names = QUICK_VERIFIED + QUICK_PATH if ctx.quick else tuple(r.name for r in REACTIONS)
    out: list[Frame] = []
    status: dict[str, str] = {}
    for name in names:
        rx = get_reaction(name)
        ts, status[name] = transition_state(ctx, rx)
        if ts is not None and ts.verified:
            out += ts_centred(ctx, rx, ts)
            continue
        frames, left_out = path_sampled(ctx, rx, status[name])
        out += frames
        if left_out:
            status[name] += f"; {left_out}"
    return out, status


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


def finish_info(frames: list[Frame], seed: int) -> None:
    """Every frame gets system, role, temperature and split (rxn-dft's held-out policy)."""
    rng = np.random.default_rng(seed)
    for f in frames:
        i = f.info
        i["system"] = i.get("reaction", i.get("molecule"))
        i.setdefault("role", ROLE_OF_SOURCE.get(i["source"], "thermal"))
        i["temperature"] = float(i.get("temperature", STATIC))
        if i.get("reaction") in TEST_REACTIONS:
            i["split"] = "test"
        elif i.get("source") == "xtb-stationary":
            i["split"] = "val"
        else:
            i["split"] = "val" if rng.random() < VAL_FRACTION else "train"


def near_ts_fraction(frames: list[Frame], label_set: str, window: float = TS_WINDOW) -> dict[str, float]:
    """Per reaction with a ``ts`` frame: the fraction of its frames within ``window`` eV of the TS energy."""
    ts_e = {f.info["reaction"]: f.labels[label_set].energy for f in frames if f.info.get("role") == "ts"}
    out = {}
    for name, e in ts_e.items():
        de = [abs(f.labels[label_set].energy - e) for f in frames if f.info.get("reaction") == name]
        out[name] = float(np.mean(np.array(de) <= window))
    return out


def card_notes(frames: list[Frame], status: dict[str, str], label_set: str, dropped: int, repeats: int) -> str:
    """Provenance notes: what each reaction holds, what is verified, what was left out and why."""
    from collections import Counter

    per = Counter(f.info.get("reaction") for f in frames)
    near = near_ts_fraction(frames, label_set)
    lines = [__doc__.strip(), "", "Reactions (frames; xTB TS status; share within "
             f"{TS_WINDOW} eV of the TS where verified):"]
    for name, st in status.items():
        tail = (f"; {near[name]:.0%} near the TS" if name in near else
                "; no frame tagged ts (path sampling only)" if per[name] else "")
        lines.append(f"- {name}: {per[name]} frames; {st}{tail}{'; test split' if name in TEST_REACTIONS else ''}")
    all_near = [n for n in near.values()]
    lines += ["", f"Frames: {len(frames)}; by source {dict(Counter(f.info['source'] for f in frames))}; "
              f"by split {dict(Counter(f.info['split'] for f in frames))}; small-molecule frames {per[None]}.",
              f"Verified TS-centred reactions: {len(near)}; mean share within {TS_WINDOW} eV of the TS "
              f"{np.mean(all_near) if all_near else float('nan'):.0%}.",
              f"Held out (test split, as rxn-dft): {sorted(set(TEST_REACTIONS) & set(status))}.",
              f"Dropped (failed labels): {dropped}; repeated geometries: {repeats}."]
    return "\n".join(lines)


def build(ctx: BuildContext) -> Dataset:
    """Reaction and molecule frames (cached stages) → GFN2-xTB labels."""
    rx, status = reaction_frames(ctx)
    mol = molecule_frames(ctx)
    todo = rx + [f.copy() for f in mol]
    finish_info(todo, ctx.seed)
    # after the splits are drawn, so dropping a repeat moves no other frame between train and val
    todo, repeats = drop_repeated_geometries(todo)
    ctx.say(f"{len(rx)} reaction frames + {len(mol)} molecule frames, less {repeats} repeated geometries")
    xtb = label(ctx, todo, "gfn2-xtb")
    notes = card_notes(xtb.frames, status, xtb.name, len(xtb.failures), repeats)
    return Dataset(xtb.frames, NAME, provenance(ctx, {xtb.name: xtb.provenance}, ("tblite", "rdkit", "sella"), notes))
