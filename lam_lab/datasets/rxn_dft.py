"""rxn-dft: ωB97X/6-31G(d) (PySCF) and GFN2-xTB labels on frames centred on verified transition states.

Per reaction whose GFN2-xTB TS verified (one imaginary mode, IRC to both minima): the stationary
points, IRC frames, thermal normal-mode displacements of the TS, MD launched from the TS at
300–1000 K and near-minimum frames, farthest-point selected with ≥ ``TS_FRACTION`` of them within
``TS_WINDOW`` eV (xTB) of the TS energy. The ωB97X TS and minima refined from the xTB ones are added
as frames with roles ``ts``/``reactant``/``product`` once their stage has run (``ts`` only when the
DFT saddle verified). Split (``info['split']``): whole ``TEST_REACTIONS`` are ``test``; for the
others, the stationary points and a seeded 10 % of the rest are ``val``, the remainder ``train``.

Build in phases (each cached and resumable; DFT labelling takes hours on 2 cores): ``python -m
lam_lab.datasets.rxn_dft frames|label|ts|closed-shell|export|pack|build|partial [--cache-dir DIR]``;
``closed-shell`` checks the built set's frames (``--new``: the selected ones and DFT stationary points it lacks)
that GFN2-xTB's gap flags for RKS → UKS instability in DFT and ``build`` labels those found unstable with the
broken-symmetry solution (:mod:`lam_lab.datasets.closed_shell`);
``ts`` and ``export`` write the verified stationary points to ``lam_lab/datasets/files/transition-states.json``
(shipped); ``pack`` makes the build state committable (label archive shards, gzipped stages); ``partial`` writes the
frames labelled so far to a file for experiments. ``--rounds N`` (frames, label, partial) adds the first N rounds of
``EXTRA_ROUND_PLAN`` (frames per training reaction; :func:`extra_frames`); the shipped set holds ``EXTRA_ROUNDS``.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame, Labels
from lam_lab.datasets._common import cache_labels, label, labelled_so_far, provenance
from lam_lab.datasets._stages import BuildContext
from lam_lab.datasets.closed_shell import (
    check,
    check_built,
    check_screened,
    checks_path,
    geometry_key,
    label_provenance,
    lowest_solution_note,
    read_checks,
    with_lowest_solution,
    xtb_gap,
)
from lam_lab.datasets.reactions import ALL_REACTIONS, FOURTH_SET, KIN_SET, MORE_REACTIONS, get_reaction
from lam_lab.datasets.rxn_splits import (
    TEST_REACTIONS,
    TS_WINDOW,
    assign_splits,
    drop_repeated_geometries,
    geometry_bytes,
    legacy_frames,
    ts_energy_fraction,
)
from lam_lab.datasets.ts_sampling import (
    DFT_FIRST,
    TS_FILE,
    TSSampling,
    TSSearchFailed,
    candidates,
    dft_first_ts,
    dft_ts,
    export_transition_states,
    select_frames,
    select_more,
    ts_offset,
    xtb_ts,
)

NAME = "rxn-dft"
DESCRIPTION = ("≈15,500 frames centred on verified transition states of 85 C/H/N/O reactions (IRC, TS normal "
               "modes, MD from the TS, near-minimum frames), ωB97X/6-31G(d) PySCF labels on the lowest SCF solution "
               "(broken-symmetry UKS where RKS is unstable) plus GFN2-xTB labels; whole reactions held out as the "
               "test split")
PER_REACTION = 96
# More frames per training reaction, in rounds, each from fresh candidate pools (seed offset EXTRA_SEED_STEP·k)
# and picked farthest from every frame already chosen; the in-distribution error falls ×0.8 per doubling of frames
# per reaction. EXTRA_ROUND_PLAN[k-1] is round k's (frames per reaction, largest molecule in atoms or None): round 1
# goes to every training reaction; round 2 to the molecules of ≤ 8 atoms, whose val frames hold 59 % of the squared
# force error with 27 % of the atoms (every atom is at the reaction centre) and whose frames cost 2–8 s of DFT
# (15–35 s at 12–16 atoms), and from round 2 on the pools also sample around the DFT TS (:func:`dft_centred_pool`).
# EXTRA_ROUNDS is how many rounds the shipped set holds (fully labelled). The reactions added for transfer
# (MORE_REACTIONS, FOURTH_SET, KIN_SET) have the first selection only: reactions count there, not frames per reaction.
EXTRA_ROUND_PLAN: tuple[tuple[int, int | None], ...] = ((96, None), (192, 8))
EXTRA_PER_ROUND = EXTRA_ROUND_PLAN[0][0]
EXTRA_ROUNDS = 2
FIRST_SELECTION_ONLY = frozenset(r.name for r in MORE_REACTIONS + FOURTH_SET + KIN_SET)
EXTRA_SEED_STEP = 100
TS_FRACTION = 0.45
QUICK_REACTIONS = ("hcn-hnc",)
DFT_ROLES = ("reactant", "ts", "product")
LABEL_CHUNK = 16  # frames per cache look-up in the label phase


def _names(ctx: BuildContext) -> tuple[str, ...]:
    return QUICK_REACTIONS if ctx.quick else tuple(r.name for r in ALL_REACTIONS)


def _sampling(ctx: BuildContext) -> TSSampling:
    if ctx.quick:
        return TSSampling(ts_mode_temperatures=(300.0,), ts_mode_samples=3, min_mode_temperatures=(300.0,),
                          min_mode_samples=1, ts_md_temperatures=(600.0,), ts_md_runs=1, ts_md_steps=8,
                          ts_md_interval=4, min_md_temperatures=(), seed=ctx.seed)
    return TSSampling(seed=ctx.seed)


def verified_reactions(ctx: BuildContext) -> dict[str, object]:
    """name -> verified xTB TSResult; reactions whose TS failed a check are reported and left out."""
    out = {}
    for name in _names(ctx):
        if name in DFT_FIRST:  # searched at the DFT level; included once that search verified
            res = dft_first_ts(ctx, get_reaction(name), cached_only=True)
            if res is not None and res.verified:
                out[name] = res
            else:
                ctx.say(f"{name}: DFT-level TS {'not run yet' if res is None else res.status}; reaction left out")
            continue
        try:
            res = xtb_ts(ctx, get_reaction(name))
        except TSSearchFailed as exc:
            ctx.say(f"{name}: xTB TS search failed ({exc}); reaction left out")
            continue
        if res.verified:
            out[name] = res
        else:
            ctx.say(f"{name}: xTB TS not verified ({res.status}); reaction left out")
    return out


def frames(ctx: BuildContext) -> list[Frame]:
    """Selected label-free frames of every verified reaction, interleaved (so partial labels cover all)."""
    per = 6 if ctx.quick else PER_REACTION
    chosen: list[list[Frame]] = []
    for name, ts in verified_reactions(ctx).items():
        pool = candidates(ctx, get_reaction(name), ts, _sampling(ctx))
        # seeded by name, so adding a reaction leaves every other reaction's picks (and labels) as they were
        seed = ctx.seed + zlib.crc32(name.encode()) % 10_000
        picked = select_frames(pool, per, TS_WINDOW, TS_FRACTION, seed=seed)
        # Claisen's stored pool has xtb_rel_ts against its ωB97X TS energy, so its labelled first selection was drawn
        # without the near-TS quota; it is kept as drawn (its labels and every held-out figure are on it), re-centred
        offset = ts_offset(pool)
        for f in picked if abs(offset) > 1e-3 else ():  # elsewhere only SCF noise (~1e-8 eV): left as stored
            f.info["xtb_rel_ts"] = float(f.info["xtb_rel_ts"]) - offset
        chosen.append(picked)
    return _interleave(chosen)


def _interleave(groups: list[list[Frame]]) -> list[Frame]:
    """One frame of each group in turn, so the labels of any prefix cover every reaction."""
    return [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]


def extra_frames(ctx: BuildContext, rounds: int = EXTRA_ROUNDS) -> list[Frame]:
    """Round 1 … ``rounds`` of :data:`EXTRA_ROUND_PLAN`: more label-free frames of the training reactions (none of
    the test ones), round by round, interleaved; ``info['extra_round']`` says which. The frames of :func:`frames`
    stay as they are, and so does every earlier round.

    Round k adds a fresh candidate pool (the same sampling, seed offset ``EXTRA_SEED_STEP``·k; from round 2 also one
    around the DFT TS) and picks, ≥ ``TS_FRACTION`` near the TS, the frames farthest from all chosen before, so each
    round spreads over what the earlier ones and the first selection left uncovered."""
    if rounds <= 0:
        return []
    if rounds > len(EXTRA_ROUND_PLAN):
        raise ValueError(f"rxn-dft plans {len(EXTRA_ROUND_PLAN)} extra rounds (EXTRA_ROUND_PLAN), not {rounds}")
    per = 6 if ctx.quick else PER_REACTION
    by_round: list[list[list[Frame]]] = [[] for _ in range(rounds)]
    for name, ts in verified_reactions(ctx).items():
        if name in TEST_REACTIONS or name in FIRST_SELECTION_ONLY:
            continue
        rx, sampling = get_reaction(name), _sampling(ctx)
        pool = candidates(ctx, rx, ts, sampling)
        first = select_frames(pool, per, TS_WINDOW, TS_FRACTION, seed=ctx.seed + zlib.crc32(name.encode()) % 10_000)
        where = {geometry_bytes(f): i for i, f in enumerate(pool)}
        chosen = [where[geometry_bytes(f)] for f in first]
        for k in range(1, rounds + 1):
            more, max_atoms = EXTRA_ROUND_PLAN[k - 1]
            more = 3 if ctx.quick else more
            if max_atoms is not None and len(ts.ts) > max_atoms:
                continue
            seed = sampling.seed + EXTRA_SEED_STEP * k
            pool = pool + candidates(ctx, rx, ts, replace(sampling, seed=seed))
            high = None if ctx.quick or k < 2 or name in DFT_FIRST else dft_ts(ctx, rx, ts, cached_only=True)
            if high is not None:
                pool = pool + dft_centred_pool(ctx, name, high, int(ts.ts.info.get("charge", 0)),
                                               replace(sampling, seed=seed + 1))
            new = select_more(pool, chosen, more, TS_WINDOW, TS_FRACTION)
            chosen += new
            by_round[k - 1].append([_tagged(pool[i], k) for i in new])
    return [f for groups in by_round for f in _interleave(groups)]


def dft_centred_pool(ctx: BuildContext, name: str, high, charge: int, sampling: TSSampling) -> list[Frame]:
    """Candidates drawn around the reaction's ωB97X TS and minima ``high`` (a TSResult: normal modes of the DFT
    Hessian, GFN2-xTB MD from the DFT geometries), each with ``info['centre'] = 'dft'``.

    The DFT TS can sit far from the xTB one (0.74 Å RMSD for propyne → allene), outside what sampling around the
    xTB TS reaches. The stationary points and IRC are left out (rxn-dft holds the DFT stationary points already);
    ``xtb_rel_ts`` is relative to GFN2-xTB's energy at the DFT TS geometry, not to the DFT energy stored there."""
    from lam_lab.sampling.neb import xtb_calculator

    centred = replace(high, ts=high.ts.copy(), reactant=high.reactant.copy(), product=high.product.copy(), irc=[])
    for a in (centred.ts, centred.reactant, centred.product):
        a.info["charge"] = charge
        a.calc = xtb_calculator(a)
    out = []
    for f in candidates(ctx, get_reaction(name), centred, sampling):
        if f.info.get("source") != "xtb-stationary":
            f.info["centre"] = "dft"
            out.append(f)
    return out


def _tagged(f: Frame, k: int) -> Frame:
    g = f.copy()
    g.info["extra_round"] = k
    return g


def dft_stationary(ctx: BuildContext, cached_only: bool = False) -> list[Frame]:
    """ωB97X/6-31G(d) minima and TS of each verified reaction (label-free frames); the DFT TS stage runs where it
    has not, unless ``cached_only`` (then reactions whose stage has not run yet have none).

    Their DFT energies and forces, computed by the TS stage with the same labeler, go into the label cache
    (``cache_labels``) so they are not computed twice. Where the restricted saddle is RKS-unstable (the closed-shell
    checks) and the saddle on the lowest surface has been searched (``ts --lowest-solution``), that search's points
    replace the restricted ones (``info['surface'] = 'lowest'``).
    """
    out, checks = [], read_checks(checks_path(ctx.cache_dir))
    for name, low in verified_reactions(ctx).items():
        res = low if name in DFT_FIRST else dft_ts(ctx, get_reaction(name), low, cached_only=cached_only)
        if res is None:
            ctx.say(f"{name}: DFT TS stage not run yet; no DFT stationary points in this interim set")
            continue
        charge, surface = int(low.ts.info.get("charge", 0)), "restricted"
        restricted = checks.get(geometry_key(_stationary_frame(res.ts, {"charge": charge})), {"stable": True})
        unstable = restricted["stable"] is False  # None: the check failed, so the restricted saddle stays
        lowest = dft_ts(ctx, get_reaction(name), low, cached_only=True, lowest_solution=True) if unstable else None
        if lowest is not None:
            res, surface = lowest, "lowest"
        else:
            if unstable:
                ctx.say(f"{name}: the restricted DFT saddle is RKS-unstable and kept; search it on the lowest "
                        f"surface with `ts --lowest-solution --only {name}`")
            points = [(_stationary_frame(x, {"charge": charge}), x) for x in (res.reactant, res.ts, res.product)]
            cache_labels(ctx, [(f, Labels(x.get_potential_energy(), x.get_forces())) for f, x in points
                               if x.calc is not None], "dft", threads=1)
        for role, atoms in zip(DFT_ROLES, (res.reactant, res.ts, res.product)):
            if role == "ts" and not res.verified:
                role = "dft-saddle-unverified"
            out.append(_stationary_frame(atoms, {"reaction": name, "charge": charge, "role": role,
                                                 "source": "dft-stationary", "dft_barrier": res.barrier,
                                                 "surface": surface}))
    return out


def _stationary_frame(atoms, info: dict) -> Frame:
    """A label-free frame of a stationary point with ``info``."""
    return Frame(atoms.numbers, atoms.positions, None, [False] * 3, {}, info)


def build_frames(ctx: BuildContext, rounds: int = EXTRA_ROUNDS, cached_only: bool = False) -> list[Frame]:
    """Every frame a build labels, in the build's order: the selection, the DFT stationary points, the extra rounds."""
    # extra rounds last: each reaction's split stream reaches its first frames in the same order as without them
    return frames(ctx) + ([] if ctx.quick else dft_stationary(ctx, cached_only)) + extra_frames(ctx, rounds)


def build(ctx: BuildContext, cached_only: bool = False, rounds: int = EXTRA_ROUNDS) -> Dataset:
    """Frames (+ ``rounds`` extra rounds) → DFT labels (cached per frame) → DFT stationary points → GFN2-xTB labels.

    ``cached_only``: only the frames labelled so far (an interim set for experiments; never shipped).
    """
    todo = build_frames(ctx, rounds, cached_only)
    assign_splits(todo, ctx.seed)
    if cached_only:
        todo = labelled_so_far(ctx, todo, "dft", threads=1)
    ctx.say(f"{len(todo)} frames to label with ωB97X/6-31G(d)")
    dft = label(ctx, todo, "dft", threads=1)
    xtb = label(ctx, dft.frames, "gfn2-xtb")
    by_index = {dft.indices[j]: f for j, f in zip(xtb.indices, xtb.frames)}
    kept = [by_index[i] for i in sorted(by_index)]
    legacy = legacy_frames(ctx)
    assign_splits(legacy, ctx.seed + 1)
    kept, repeats = drop_repeated_geometries(kept + legacy)
    # labels on the functional's lowest solution where the closed-shell one is not (the checks the phase made)
    kept = with_lowest_solution(kept, read_checks(checks_path(ctx.cache_dir)), dft.name,
                                np.array([xtb_gap(f) for f in kept]))
    counts = {s: sum(f.info["split"] == s for f in kept) for s in ("train", "val", "test")}
    ds = Dataset(kept, NAME)
    near = ts_energy_fraction(ds, dft.name) if not ctx.quick else float("nan")
    held = sorted({f.info["reaction"] for f in kept if f.info["split"] == "test"})
    notes = (f"{__doc__.strip()}\nReactions: {sorted({f.info['reaction'] for f in kept})}. Held out (test): {held}. "
             f"Split counts: {counts}. Within {TS_WINDOW} eV (DFT) of the reaction's TS: {near:.1%}. "
             f"Extra rounds (frames per training reaction, up to that many atoms): {list(EXTRA_ROUND_PLAN[:rounds])}. "
             f"Dropped (failed labels): {len(todo) - len(by_index)}; repeated geometries: {repeats}. Plus "
             f"{len(legacy)} frames of the first rxn-dft (CI-NEB bands and MD of 10 reactions, source legacy-*, no "
             f"frame tagged ts), less their repeats. {lowest_solution_note(kept)}")
    prov = provenance(ctx, {**label_provenance(dft.name, dft.provenance), xtb.name: xtb.provenance},
                      ("pyscf", "tblite", "rdkit", "sella"), notes)
    return Dataset(kept, NAME, prov)


def pack_build_state(ctx: BuildContext) -> None:
    """Make the build state committable: labels into compressed archive shards, stages gzipped, TSs exported."""
    import gzip

    from lam_lab import datasets
    from lam_lab.labelers.cache import pack

    archives = pack(ctx.label_cache())
    for plain in sorted((ctx.cache_dir / "stages").glob("ts-*.json")):
        target = plain.with_name(plain.name + ".gz")
        if not target.exists():
            target.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    export_transition_states(ctx, list(ALL_REACTIONS), datasets.FILES / TS_FILE)
    ctx.say(f"labels packed into {', '.join(map(str, archives)) or 'the archives (nothing new)'}; stages gzipped; "
            f"{TS_FILE} exported")


def main(argv: list[str] | None = None) -> None:
    """Run one phase of the build: frames (xTB), label (DFT on frames), ts (DFT saddles), build (all, write)."""
    from lam_lab import datasets

    p = argparse.ArgumentParser(prog="python -m lam_lab.datasets.rxn_dft")
    p.add_argument("phase", choices=("frames", "label", "ts", "closed-shell", "export", "pack", "build", "partial"))
    p.add_argument("--cache-dir", default=str(datasets.default_cache_dir(NAME)))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reverse", action="store_true", help="ts: from the last reaction; label: from the last frame")
    p.add_argument("--only", default=None, help="ts phase: this reaction only (DFT-first reactions included)")
    p.add_argument("--lowest-solution", action="store_true",
                   help="ts phase: the saddle on the functional's lowest surface (broken-symmetry UKS where RKS is "
                        "unstable)")
    p.add_argument("--out", default="data-build/rxn-dft-partial.lamh5", help="partial phase: where to write")
    p.add_argument("--shard", default="0/1", help="closed-shell: I/N, this worker's share of the checks")
    p.add_argument("--new", action="store_true",
                   help="closed-shell: the selected frames and DFT stationary points the shipped set does not hold "
                        "yet (labelled or not)")
    p.add_argument("--rounds", type=int, default=EXTRA_ROUNDS,
                   help="frames, label, partial: with this many extra rounds of frames per training reaction")
    a = p.parse_args(argv)
    ctx = BuildContext(NAME, Path(a.cache_dir), 1, False, datasets.DEFAULT_SEED, True)
    if a.phase == "frames":
        ctx.say(f"{len(frames(ctx) + extra_frames(ctx, a.rounds))} frames selected")
    elif a.phase == "label":
        todo = labelled_so_far(ctx, frames(ctx) + extra_frames(ctx, a.rounds), "dft", labelled=False, threads=1)
        # smallest molecules first (a frame's DFT cost grows ~n^1.8): a stopped run has labelled the most frames,
        # and a second worker with --reverse takes the largest
        todo.sort(key=len)
        ctx.say(f"{len(todo)} frames still to label")
        chunks = [todo[i:i + LABEL_CHUNK] for i in range(0, len(todo), LABEL_CHUNK)]
        for chunk in reversed(chunks) if a.reverse else chunks:  # the cache is re-read per chunk, so a second
            label(ctx, chunk, "dft", threads=a.threads)             # worker from the other end never repeats one
    elif a.phase == "ts" and a.only in DFT_FIRST:
        dft_first_ts(ctx, get_reaction(a.only), threads=a.threads)
        export_transition_states(ctx, list(ALL_REACTIONS), datasets.FILES / TS_FILE)
    elif a.phase == "ts":
        items = [(n, r) for n, r in verified_reactions(ctx).items() if a.only in (None, n) and n not in DFT_FIRST]
        for name, low in reversed(items) if a.reverse else items:
            res = dft_ts(ctx, get_reaction(name), low, threads=a.threads, lowest_solution=a.lowest_solution)
            if a.lowest_solution:  # its points checked now, so the build labels them on the lowest solution
                charge = int(low.ts.info.get("charge", 0))
                points = [_stationary_frame(x, {"charge": charge, "reaction": name})
                          for x in (res.reactant, res.ts, res.product)]
                check(points, checks_path(ctx.cache_dir), say=ctx.say)
            export_transition_states(ctx, list(ALL_REACTIONS), datasets.FILES / TS_FILE)
    elif a.phase == "partial":
        ds = build(ctx, cached_only=True, rounds=a.rounds)
        from lam_lab.data.io.lamh5 import write_lamh5

        write_lamh5(ds, a.out)
        ctx.say(f"{len(ds)} frames labelled so far written to {a.out}")
    elif a.phase == "closed-shell" and a.new:  # a set being extended: its new frames checked while they label
        shipped = {geometry_key(f) for f in datasets.load(NAME)}
        # DFT stationary points only of the TS stages run so far: run it again after `ts` for the rest
        new = [f for f in build_frames(ctx, a.rounds, cached_only=True) if geometry_key(f) not in shipped]
        check_screened(new, ctx.cache_dir, tuple(map(int, a.shard.split("/"))), say=ctx.say)
    elif a.phase == "closed-shell":
        check_built(NAME, ctx.cache_dir, tuple(map(int, a.shard.split("/"))), say=ctx.say)
    elif a.phase == "pack":
        pack_build_state(ctx)
    elif a.phase == "export":
        export_transition_states(ctx, list(ALL_REACTIONS), datasets.FILES / TS_FILE)
    else:
        datasets.build(NAME, cache_dir=a.cache_dir)


if __name__ == "__main__":
    main()
