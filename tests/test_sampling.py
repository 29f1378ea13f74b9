"""Sampling: SMILES → 3D, atom-mapped pairs, CI-NEB on GFN2-xTB, Langevin MD with guards (real codes, tiny inputs)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny xTB jobs: threads only fight each other

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase import Atoms  # noqa: E402

from lam_lab.data.errors import DataError  # noqa: E402
from lam_lab.sampling import MDConfig, NEBConfig, mapped_bond_graphs, mapped_pair, run_md, run_neb, smiles_to_atoms  # noqa: E402
from lam_lab.sampling.md import guard  # noqa: E402
from lam_lab.sampling.neb import xtb_calculator  # noqa: E402


def _bonds(atoms: Atoms) -> list[tuple[str, float]]:
    """(element pair, length Å) of every pair closer than 1.2 × the sum of covalent radii."""
    from ase.data import covalent_radii

    d = atoms.get_all_distances()
    r = covalent_radii[atoms.numbers]
    sym = atoms.get_chemical_symbols()
    n = len(atoms)
    return [("".join(sorted(sym[a] + sym[b])), float(d[a, b])) for a in range(n) for b in range(a + 1, n)
            if d[a, b] < 1.2 * (r[a] + r[b])]


def test_smiles_to_3d_has_sane_bond_lengths():
    (atoms,) = smiles_to_atoms("CCO", seed=1)
    assert atoms.get_chemical_formula() == "C2H6O"
    expected = {"CC": 1.52, "CO": 1.42, "CH": 1.09, "HO": 0.97}
    bonds = _bonds(atoms)
    assert len(bonds) == 8
    for kind, d in bonds:
        assert abs(d - expected[kind]) < 0.06, (kind, d)


def test_mapped_pair_keeps_atom_order_and_moves_the_mapped_h():
    pair = mapped_pair("[H:3][C:1]#[N:2]", "[C-:1]#[N+:2][H:3]", name="hcn")
    assert list(pair.reactant.numbers) == list(pair.product.numbers) == [1, 6, 7]
    r, p = pair.reactant, pair.product
    assert r.get_distance(0, 1) < 1.2 and p.get_distance(0, 2) < 1.2  # H on C, then on N
    assert r.info["role"] == "reactant" and p.info["role"] == "product"


def test_bimolecular_endpoint_fragments_are_pushed_apart():
    pair = mapped_pair("[CH2:1]=[CH:2][CH:3]=[CH2:4].[CH2:5]=[CH2:6]",
                       "[CH2:1]1[CH:2]=[CH:3][CH2:4][CH2:5][CH2:6]1", name="da", n_conformers=4)
    r, p = pair.reactant, pair.product
    assert p.get_distance(0, 5) < 1.7 and p.get_distance(3, 4) < 1.7  # the new sigma bonds
    assert 2.6 < r.get_distance(0, 5) < 4.5 and 2.6 < r.get_distance(3, 4) < 4.5  # diene faces dienophile


def test_complex_to_complex_ends_are_docked_not_overlapping():
    # formic acid dimer double proton transfer: RDKit puts both molecules at the origin; they are docked
    pair = mapped_pair("[H:1][C:2](=[O:3])[O:4][H:5].[H:6][C:7](=[O:8])[O:9][H:10]",
                       "[H:1][C:2]([O:3][H:10])=[O:4].[H:6][C:7]([O:8][H:5])=[O:9]", name="fad", n_conformers=2)
    for a in (pair.reactant, pair.product):
        d = a.get_all_distances() + 9 * np.eye(len(a))
        assert d.min() > 0.9  # no atoms on top of each other
    r = pair.reactant
    assert 1.6 < r.get_distance(2, 9) < 2.6 and 1.6 < r.get_distance(7, 4) < 2.6  # the two H-bonds that transfer


def test_mapped_bond_graphs_are_in_the_reactant_atom_order():
    # HCN -> HNC: reactant atoms H3 C1 N2; the H moves from C (index 1) to N (index 2)
    r, p = mapped_bond_graphs("[H:3][C:1]#[N:2]", "[C-:1]#[N+:2][H:3]")
    assert r == {(0, 1), (1, 2)} and p == {(1, 2), (0, 2)}


def test_mapped_pair_rejects_unmapped_heavy_atoms():
    with pytest.raises(DataError, match="atom-map"):
        mapped_pair("[H:3]C#[N:2]", "[C-:1]#[N+:2][H:3]")
    with pytest.raises(DataError, match="differ"):
        mapped_pair("[H:3][C:1]#[N:2]", "[C-:1]#[N+:2]")


def test_neb_hcn_to_hnc_puts_the_ts_above_both_ends():
    pair = mapped_pair("[H:3][C:1]#[N:2]", "[C-:1]#[N+:2][H:3]", name="hcn")
    res = run_neb(pair.reactant, pair.product, config=NEBConfig(n_images=5, steps=40, record_every=10))
    e = res.energies
    assert len(res.images) == 5 and 0 < res.ts_index < 4
    assert e[res.ts_index] > e[0] + 0.5 and e[res.ts_index] > e[-1] + 0.5
    assert e[-1] > e[0]  # HNC lies above HCN
    assert res.ts.info["role"] == "ts" and res.images[0].info["role"] == "reactant"
    assert res.history and all(len(b) == 3 for b in res.history)
    h_c = res.ts.get_distance(0, 1)
    assert 1.0 < h_c < 1.8  # the H is bridging, not gone


def test_md_returns_finite_frames_at_the_asked_temperatures():
    (water,) = smiles_to_atoms("O", seed=0)
    cfg = MDConfig(steps=40, interval=10)
    for temp in (300.0, 800.0):
        run = run_md(water, xtb_calculator, temp, cfg, seed=3)
        assert run.stopped is None and run.steps_done == 40 and len(run.frames) == 4
        for snap in run.frames:
            assert snap.info["temperature"] == temp
            assert np.all(np.isfinite(snap.positions)) and np.isfinite(snap.get_potential_energy())
            assert np.all(np.isfinite(snap.get_forces()))
        # 3 atoms are a noisy thermometer; the kinetic temperature must still be of the right order
        assert 0 < np.mean(run.kinetic_temperatures) < 6 * temp


def test_md_guard_flags_exploded_geometries():
    cfg = MDConfig()
    ok = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    assert guard(ok, np.zeros((2, 3)), -1.0, cfg) is None
    squashed = Atoms("H2", positions=[[0, 0, 0], [0.1, 0, 0]])
    assert "closer" in guard(squashed, np.zeros((2, 3)), -1.0, cfg)
    flown = Atoms("H3", positions=[[0, 0, 0], [0.74, 0, 0], [9.0, 0, 0]])
    assert "drifted" in guard(flown, np.zeros((3, 3)), -1.0, cfg)
    assert "non-finite" in guard(ok, np.full((2, 3), np.nan), -1.0, cfg)
    assert "force" in guard(ok, np.full((2, 3), 100.0), -1.0, cfg)


def test_select_fps_keeps_the_named_frames_then_spreads_out():
    from lam_lab.data.frame import Frame
    from lam_lab.sampling import select_fps

    base = smiles_to_atoms("C=O", seed=0)[0]
    rng = np.random.default_rng(0)
    frames = [Frame(base.numbers, base.positions + rng.normal(scale=s, size=base.positions.shape))
              for s in np.linspace(0.0, 0.3, 20)]
    picks = select_fps(frames, 5, seed=0, keep=[3, 7])
    assert picks[:2] == [3, 7] and len(set(picks)) == 5
    assert select_fps(frames, 50) == list(range(20))


def test_more_frames_continue_farthest_point_sampling_from_those_already_labelled():
    from lam_lab.data.frame import Frame
    from lam_lab.data.selection import farthest_point_continue, fingerprint
    from lam_lab.datasets.ts_sampling import select_more

    base = smiles_to_atoms("C=O", seed=0)[0]
    rng = np.random.default_rng(1)
    frames = [Frame(base.numbers, base.positions + rng.normal(scale=s, size=base.positions.shape),
                    info={"xtb_rel_ts": float(e)})
              for s, e in zip(np.linspace(0.0, 0.3, 30), np.tile([0.1, 2.0, -0.3], 10))]
    chosen = [0, 5, 9]
    picks = farthest_point_continue(frames, chosen, 6)
    assert len(set(picks)) == 6 and not set(picks) & set(chosen)
    assert farthest_point_continue(frames, chosen, 3) == picks[:3]  # nested: a prefix of the larger pick
    assert set(farthest_point_continue(frames, chosen, 4, among=[1, 2, 3, 5])) == {1, 2, 3}
    # the first pick is the frame farthest from everything chosen
    fp = np.stack([fingerprint(f) for f in frames])
    gap = [min(np.linalg.norm(fp[i] - fp[c]) for c in chosen) for i in range(len(frames))]
    assert picks[0] == int(np.argmax(gap))

    more = select_more(frames, chosen, 10, window=0.5, fraction=0.5)
    assert len(set(more)) == 10 and not set(more) & set(chosen)
    assert sum(abs(frames[i].info["xtb_rel_ts"]) <= 0.5 for i in more) >= 5
