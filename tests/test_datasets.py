"""Built-in data sets: names, errors, an interrupted-and-resumed build, and every packaged set with provenance."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny xTB/FF jobs: threads only fight each other

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lam_lab import datasets  # noqa: E402
from lam_lab.data.errors import DataError  # noqa: E402
from lam_lab.labelers.forcefield import WaterFFLabeler  # noqa: E402

# name -> (minimum frames, label sets every frame must carry)
EXPECTED = {
    "rxn-xtb": (8000, {"gfn2-xtb"}),
    "rxn-dft": (300, {"wb97x/6-31g*", "gfn2-xtb"}),
    "metals-emt": (1500, {"emt"}),
    "water-ff": (500, {"tip3p"}),
}


def test_names_and_unknown_name_error():
    assert datasets.names() == sorted(EXPECTED)
    assert set(datasets.available()) <= set(EXPECTED)
    with pytest.raises(DataError, match="unknown built-in data set 'nope'.*buildable: metals-emt"):
        datasets.load("nope")
    with pytest.raises(DataError, match="unknown built-in"):
        datasets.build("nope")


def test_quick_build_interrupted_then_resumed_reuses_the_cache(tmp_path, monkeypatch):
    calls = {"n": 0, "limit": 2}
    real = WaterFFLabeler.compute

    def flaky(self, frame):
        calls["n"] += 1
        if calls["n"] > calls["limit"]:
            raise KeyboardInterrupt  # what a kill looks like from inside: not a per-frame failure
        return real(self, frame)

    monkeypatch.setattr(WaterFFLabeler, "compute", flaky)
    out = tmp_path / "water.lamh5"
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        datasets.build("water-ff", out=out, cache_dir=cache, quick=True, progress=False)
    assert not out.exists()
    assert len(list((cache / "labels").rglob("*.npz"))) == 2

    # the resumed build neither reruns MD (stage cache) nor relabels the two cached frames
    import lam_lab.datasets.water_ff as water

    monkeypatch.setattr(water, "_trajectory", lambda *a, **k: pytest.fail("MD re-run despite the stage cache"))
    calls.update(n=0, limit=10**9)
    ds = datasets.build("water-ff", out=out, cache_dir=cache, quick=True, progress=False)
    assert calls["n"] == len(ds) - 2
    assert out.exists() and len(ds) == 4
    again = datasets.build("water-ff", out=out, cache_dir=cache, quick=True, progress=False)
    assert calls["n"] == len(ds) - 2  # fully cached: nothing computed
    f0, g0 = ds[0], again[0]
    assert np.allclose(f0.positions, g0.positions) and f0.labels["tip3p"].energy == g0.labels["tip3p"].energy
    assert ds.provenance.seed == 0 and "tip3p" in ds.provenance.labels


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_set_loads_with_provenance(name):
    if name not in datasets.available():
        pytest.skip(f"{name} not built yet")
    ds = datasets.load(name)
    n_min, labels = EXPECTED[name]
    assert ds.name == name and len(ds) >= n_min
    prov = ds.provenance
    assert labels <= set(prov.labels) and prov.seed is not None and prov.date and "build(" in prov.builder
    assert {"lam_lab", "ase", "numpy"} <= set(prov.versions)
    for lp in prov.labels.values():
        assert lp.software and lp.version
    for f in ds:
        assert labels <= set(f.labels)
    assert not ds[:: max(len(ds) // 100, 1)].validate(raise_on_error=False)  # a sample: periodic checks are O(N²)
    assert str(datasets.info(name)).startswith(name)


def _each_geometry_once(ds) -> bool:
    """No geometry twice (to 1e-4 Å), so no frame is in two splits and none counts twice in a score."""
    return len({np.asarray(f.numbers).tobytes() + np.round(f.positions, 4).tobytes() for f in ds}) == len(ds)


def test_rxn_sets_cover_the_reactions_and_roles():
    built = set(datasets.available())
    if "rxn-xtb" in built:
        ds = datasets.load("rxn-xtb")
        assert set(ds.elements) <= {"H", "C", "N", "O"}
        reactions = {f.info.get("reaction") for f in ds} - {None}
        assert {"diels-alder", "claisen"} <= reactions and len(reactions) >= 20
        assert len({f.info["molecule"] for f in ds if "molecule" in f.info}) >= 20
        assert {f.info["source"] for f in ds} == {"xtb-stationary", "irc", "ts-modes", "ts-md", "min-modes", "min-md",
                                                 "neb", "md", "molecule-md"}
        # TS-centred reactions hold their verified saddle; path-sampled ones only a band maximum (tests/test_rxn_xtb.py)
        for r in reactions:
            roles = {f.info["role"] for f in ds if f.info.get("reaction") == r}
            assert {"reactant", "product"} <= roles and len(roles & {"ts", "path-max"}) == 1, r
        assert _each_geometry_once(ds)
    if "rxn-dft" in built:
        ds = datasets.load("rxn-dft")
        splits = {f.info["split"] for f in ds}
        assert splits == {"train", "val", "test"}
        from lam_lab.datasets.rxn_dft import TEST_REACTIONS

        # whole held-out reactions (the NEB-era set held out Claisen alone; the rebuilt one up to four)
        assert {f.info["reaction"] for f in ds if f.info["split"] == "test"} <= set(TEST_REACTIONS)
        legacy = [f for f in ds if str(f.info.get("source", "")).startswith("legacy-")]  # NEB-era frames kept
        assert all(f.info.get("role") != "ts" for f in legacy)
        for r in {f.info["reaction"] for f in ds}:
            roles = {f.info.get("role") for f in ds if f.info["reaction"] == r and "neb_iteration" not in f.info
                     and not str(f.info.get("source", "")).startswith("legacy-")}
            assert not roles or {"reactant", "product"} <= roles and roles & {"ts", "xtb-ts", "dft-saddle-unverified"}, r
        assert _each_geometry_once(ds)
    if not built & {"rxn-xtb", "rxn-dft"}:
        pytest.skip("no reaction set built yet")


def test_repeated_geometries_keep_the_stationary_point_frame():
    from lam_lab.data.frame import Frame
    from lam_lab.datasets.rxn_splits import drop_repeated_geometries

    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.1]])

    def frame(source: str, split: str, shift: float = 0.0) -> Frame:
        return Frame(numbers=np.array([6, 8]), positions=pos + shift, info={"source": source, "split": split})

    frames = [frame("legacy-neb", "train"), frame("irc", "train", 0.5), frame("xtb-stationary", "val"),
              frame("irc", "train", 1e-6), frame("dft-stationary", "test", 0.5)]
    kept, repeats = drop_repeated_geometries(frames)
    assert repeats == 3
    assert [(f.info["source"], f.info["split"]) for f in kept] == [("xtb-stationary", "val"), ("dft-stationary", "test")]


def test_extra_rounds_of_rxn_dft_frames_leave_the_first_selection_and_its_splits_alone(tmp_path):
    from lam_lab.datasets import rxn_dft, rxn_splits
    from lam_lab.datasets._stages import BuildContext

    ctx = BuildContext("rxn-dft", tmp_path, 1, True, datasets.DEFAULT_SEED, False)
    first = rxn_dft.frames(ctx)
    extra = rxn_dft.extra_frames(ctx, 2)
    assert rxn_dft.extra_frames(ctx, 0) == []
    assert [f.info["extra_round"] for f in extra] == [1] * 3 + [2] * 3  # quick: 3 a round for hcn-hnc
    seen = [rxn_splits.geometry_bytes(f) for f in first + extra]
    assert len(set(seen)) == len(seen)  # every extra frame is a geometry not chosen before
    # round 1 is the same whether or not round 2 follows: a labelled round is never re-picked
    assert [rxn_splits.geometry_bytes(f) for f in rxn_dft.extra_frames(ctx, 1)] == seen[len(first):len(first) + 3]
    alone, both = [f.copy() for f in first], [f.copy() for f in first + extra]
    rxn_splits.assign_splits(alone, ctx.seed)
    rxn_splits.assign_splits(both, ctx.seed)
    assert [f.info["split"] for f in alone] == [f.info["split"] for f in both[:len(first)]]


def test_a_round_goes_only_to_molecules_small_enough_and_a_dft_centred_pool_is_measured_against_xtb(
        tmp_path, monkeypatch):
    from dataclasses import replace

    from ase.calculators.singlepoint import SinglePointCalculator

    from lam_lab.datasets import rxn_dft
    from lam_lab.datasets._stages import BuildContext

    ctx = BuildContext("rxn-dft", tmp_path, 1, True, datasets.DEFAULT_SEED, False)
    monkeypatch.setattr(rxn_dft, "EXTRA_ROUND_PLAN", ((96, None), (192, 2)))  # round 2: molecules of ≤ 2 atoms
    assert [f.info["extra_round"] for f in rxn_dft.extra_frames(ctx, 2)] == [1] * 3  # hcn-hnc has 3 atoms
    with pytest.raises(ValueError, match="2 extra rounds"):
        rxn_dft.extra_frames(ctx, 3)

    # a DFT-level result (energies ~ -2,500 eV as PySCF's are) re-centred on GFN2-xTB: xtb_rel_ts in xTB's own terms
    low = rxn_dft.verified_reactions(ctx)["hcn-hnc"]
    high = replace(low, ts=low.ts.copy(), reactant=low.reactant.copy(), product=low.product.copy())
    for a, e in ((high.ts, -2540.0), (high.reactant, -2542.0), (high.product, -2541.5)):
        a.positions += 0.02  # another geometry than the xTB one
        a.calc = SinglePointCalculator(a, energy=e, forces=np.zeros((len(a), 3)))
    pool = rxn_dft.dft_centred_pool(ctx, "hcn-hnc", high, 0, rxn_dft._sampling(ctx))
    assert pool and all(f.info["centre"] == "dft" for f in pool)
    assert not {f.info["source"] for f in pool} & {"xtb-stationary", "irc"}  # rxn-dft holds the DFT ones already
    rel = np.array([f.info["xtb_rel_ts"] for f in pool])
    assert np.abs(rel).max() < 10.0 and np.abs(rel).min() < 1.0
    # the same DFT-level TS sampled directly (as a DFT-first search's is): still GFN2-xTB energies, 0 at the TS
    from lam_lab.datasets.reactions import get_reaction

    pool = rxn_dft.candidates(ctx, get_reaction("hcn-hnc"), high, rxn_dft._sampling(ctx))
    assert rxn_dft.ts_offset(pool) == pytest.approx(0.0, abs=1e-6)
    assert np.abs([f.info["xtb_rel_ts"] for f in pool]).max() < 10.0


def test_every_shipped_rxn_dft_frame_is_placed_against_its_ts_in_gfn2_xtb_energies():
    """``xtb_rel_ts`` (what the near-TS quota and ``--near-ts-weight`` read) is the frame's stored GFN2-xTB energy
    less the xTB energy at its TS: the xTB TS, or for a DFT-centred frame or a DFT-first reaction the ωB97X TS."""
    from collections import defaultdict

    by = defaultdict(list)
    for f in datasets.load("rxn-dft"):
        by[f.info["reaction"]].append(f)
    checked = 0
    for name, frames in by.items():
        at = {f.info["role"]: f.labels["gfn2-xtb"].energy for f in frames if f.info.get("role") in ("ts", "xtb-ts")}
        # where the saddle was searched again on the lowest surface, the DFT-centred frames stay placed against the
        # restricted ωB97X TS they were drawn around, which the set no longer holds: one reference for all of them
        lowest = any(f.info.get("role") == "ts" and f.info.get("surface") == "lowest" for f in frames)
        refs = []
        for f in frames:
            if "xtb_rel_ts" not in f.info:
                continue
            if f.info.get("centre") == "dft" and lowest:
                refs.append(f.labels["gfn2-xtb"].energy - f.info["xtb_rel_ts"])
                continue
            ref = at.get("ts") if f.info.get("centre") == "dft" or "xtb-ts" not in at else at["xtb-ts"]
            if ref is not None:
                assert f.info["xtb_rel_ts"] == pytest.approx(f.labels["gfn2-xtb"].energy - ref, abs=1e-4), name
                checked += 1
        assert not refs or np.ptp(refs) < 1e-4, name
        checked += len(refs)
    assert checked > 10_000


def test_labels_computed_elsewhere_go_into_a_builds_cache_and_count_as_labelled(tmp_path):
    from lam_lab.data.dataset import Dataset
    from lam_lab.data.frame import Frame, Labels
    from lam_lab.datasets._common import cache_labels, labelled_so_far
    from lam_lab.datasets._stages import BuildContext
    from lam_lab.labelers import get_labeler

    ctx = BuildContext("rxn-dft", tmp_path, 1, True, datasets.DEFAULT_SEED, False)
    hcn = np.array([[0.0, 0.0, -1.07], [0.0, 0.0, 0.0], [0.0, 0.0, 1.16]])
    frames = [Frame(numbers=np.array([1, 6, 7]), positions=hcn + s, info={"charge": 0}) for s in (0.0, 0.1)]
    assert labelled_so_far(ctx, frames, "dft", threads=1) == []
    cache_labels(ctx, [(frames[0], Labels(-2524.1, np.zeros((3, 3))))], "dft", threads=1)
    assert labelled_so_far(ctx, frames, "dft", threads=1) == frames[:1]
    assert labelled_so_far(ctx, frames, "dft", labelled=False, threads=1) == frames[1:]
    cache_labels(ctx, [(frames[0], Labels(0.0, np.ones((3, 3))))], "dft", threads=1)  # the first one stays
    lab = get_labeler("dft", threads=1)  # reads the cache: no SCF runs
    got = lab.label(Dataset(frames[:1], "x"), cache_dir=ctx.label_cache()).frames[0].labels[lab.name]
    assert got.energy == pytest.approx(-2524.1) and not got.forces.any()
