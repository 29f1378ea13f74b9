"""Labelers with the real codes on tiny inputs: EMT, GFN2-xTB, PySCF DFT, TIP3P water; cache; failures."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from lam_lab.data import Dataset, Frame, Provenance, ValidationError
from lam_lab.labelers import (
    DFTLabeler,
    EMTLabeler,
    LabelCache,
    Labeler,
    WaterFFLabeler,
    XTBLabeler,
    available,
    frame_key,
    get_labeler,
)


def cu_frames(n: int = 3) -> list[Frame]:
    """Rattled 4-atom fcc Cu cells (Å)."""
    out = []
    for s in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=s)
        out.append(Frame.from_atoms(a))
    return out


def water_box(n_side: int = 3, length: float = 9.32, seed: int = 0, jitter: float = 0.03) -> Frame:
    """n_side³ randomly oriented, slightly flexed waters on a grid in a cubic periodic box (Å)."""
    from ase.calculators.tip3p import angleHOH, rOH
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    half = np.deg2rad(angleHOH) / 2
    mol = np.array([[0, 0, 0], [rOH * np.cos(half), rOH * np.sin(half), 0], [rOH * np.cos(half), -rOH * np.sin(half), 0]])
    grid = (np.arange(n_side) + 0.5) * length / n_side
    pos = []
    for x in grid:
        for y in grid:
            for z in grid:
                rot = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
                pos.append(mol @ rot.T + [x, y, z] + rng.normal(0, jitter, (3, 3)))
    n = n_side**3
    return Frame.from_atoms(Atoms("OH2" * n, positions=np.concatenate(pos), cell=[length] * 3, pbc=True))


# -- registry ----------------------------------------------------------------------------------------
def test_registry_names_and_aliases():
    assert {"emt", "gfn2-xtb", "xtb", "gfn2", "dft", "tip3p", "forcefield"} <= set(available())
    assert isinstance(get_labeler("emt"), EMTLabeler)
    for alias in ("xtb", "gfn2", "GFN2-xTB"):
        lab = get_labeler(alias)
        assert isinstance(lab, XTBLabeler) and lab.name == "gfn2-xtb"
    assert get_labeler("xtb", uhf=1).settings.spin == 1
    dft = get_labeler("dft")
    assert isinstance(dft, DFTLabeler) and dft.name == "wb97x/6-31g*"
    assert get_labeler("b3lyp/sto-3g").name == "b3lyp/sto-3g"
    assert isinstance(get_labeler("forcefield"), WaterFFLabeler) and get_labeler("tip3p").name == "tip3p"
    with pytest.raises(KeyError, match="unknown labeler"):
        get_labeler("nonsense")
    with pytest.raises(TypeError, match="no setting"):
        get_labeler("emt", basis="sto-3g")
    with pytest.raises(ValueError, match="functional"):
        get_labeler("dft", xc="not-a-functional")


# -- EMT ---------------------------------------------------------------------------------------------
def test_emt_cu_energy_forces_virial_match_ase():
    from ase.calculators.emt import EMT

    frames = cu_frames(2)
    res = get_labeler("emt").label(frames, executor=1, progress=False)
    assert res.n_labelled == 2 and res.n_failed == 0
    for inp, out in zip(frames, res.frames):
        assert "emt" not in inp.labels  # the input is not modified; outputs are copies
        atoms = inp.to_atoms()
        atoms.calc = EMT()
        lab = out.labels["emt"]
        assert lab.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(lab.forces, atoms.get_forces(), atol=1e-10)
        np.testing.assert_allclose(lab.virial, -atoms.get_stress(voigt=False) * atoms.get_volume(), atol=1e-10)
        np.testing.assert_allclose(lab.virial, lab.virial.T, atol=1e-10)
        # the label survives the ASE round trip as a stress
        np.testing.assert_allclose(out.to_atoms("emt").get_stress(), atoms.get_stress(), atol=1e-10)


def test_emt_rejects_unsupported_element_with_location():
    si = Frame.from_atoms(bulk("Si", "diamond", a=5.43))
    with pytest.raises(ValidationError) as err:
        get_labeler("emt").label(cu_frames(1) + [si], executor=1, progress=False)
    msg = str(err.value)
    assert "frame 1" in msg and "field numbers" in msg and "Si" in msg


# -- GFN2-xTB ----------------------------------------------------------------------------------------
def test_xtb_water_energy_and_forces_are_energy_derivatives():
    water = Frame.from_atoms(molecule("H2O"))
    lab = get_labeler("gfn2-xtb")
    res = lab.label([water], executor=1, progress=False)
    out = res.frames[0].labels["gfn2-xtb"]
    assert -140.0 < out.energy < -136.0  # GFN2 water ≈ −5.07 Eh ≈ −138 eV
    assert out.virial is None
    h = 2e-3
    displaced = []
    for i in range(3):
        for k in range(3):
            for sign in (1, -1):
                f = water.copy()
                f.positions[i, k] += sign * h
                displaced.append(f)
    energies = [f.labels["gfn2-xtb"].energy for f in lab.label(displaced, executor=1, progress=False).frames]
    fd = -(np.array(energies[0::2]) - np.array(energies[1::2])).reshape(3, 3) / (2 * h)
    np.testing.assert_allclose(out.forces, fd, atol=1e-3)


def test_xtb_impossible_spin_fails_and_batch_goes_on():
    good = Frame.from_atoms(molecule("H2O"))
    bad = good.copy()
    bad.info["spin"] = 1  # 10 electrons cannot have one unpaired electron
    res = get_labeler("xtb").label([good, bad, good], executor=1, progress=False)
    assert res.n_labelled == 2 and res.n_failed == 1 and res.indices == [0, 2]
    assert res.failed[0].index == 1 and "unpaired" in res.failed[0].reason
    summary = res.summary()
    assert summary.n_failed == 1 and "frame 1" in str(summary)
    assert res.to_dataset().provenance.notes.startswith("gfn2-xtb: 1 of 3 frames failed")


def test_xtb_periodic_cell_gives_virial():
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.02, seed=0)
    out = get_labeler("xtb").label(si, executor=1, progress=False).frames[0].labels["gfn2-xtb"]
    assert out.virial is not None and out.virial.shape == (3, 3)
    np.testing.assert_allclose(out.virial, out.virial.T, atol=1e-5)


# -- DFT (PySCF) -------------------------------------------------------------------------------------
def test_dft_h2_matches_direct_pyscf_call():
    from ase.units import Bohr, Hartree
    from pyscf import dft, gto

    h2 = Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 0.76]])
    res = get_labeler("dft", basis="sto-3g").label([h2], executor=1, progress=False)
    out = res.frames[0].labels["wb97x/sto-3g"]
    mol = gto.M(atom="H 0 0 0; H 0 0 0.76", basis="sto-3g", unit="Angstrom", verbose=0)
    mf = dft.RKS(mol, xc="wb97x").density_fit()
    mf.conv_tol = 1e-9
    e_ref = mf.kernel() * Hartree
    f_ref = -mf.nuc_grad_method().kernel() * Hartree / Bohr
    assert out.energy == pytest.approx(e_ref, abs=1e-6)
    np.testing.assert_allclose(out.forces, f_ref, atol=1e-6)
    assert out.forces[1, 2] == pytest.approx(-out.forces[0, 2])
    prov = res.provenance
    assert (prov.method, prov.basis, prov.software) == ("wb97x", "sto-3g", "pyscf")
    assert prov.settings["density_fit"] is True and "jkfit" in prov.settings["auxbasis"]


def test_a_stretched_h2_is_found_rks_unstable_and_its_broken_symmetry_forces_are_the_energys_derivative():
    from lam_lab.labelers.dft import closed_shell_stability

    lab = get_labeler("dft", basis="sto-3g")

    def h2(r: float) -> Frame:
        return Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, r]])

    assert closed_shell_stability(lab, h2(0.74)).stable
    st = closed_shell_stability(lab, h2(2.5), forces=True)
    assert not st.stable and st.uks_below_ev > 1.0 and st.s2 == pytest.approx(1.0, abs=0.1)  # a singlet biradical
    assert st.uks.energy == pytest.approx(lab.compute(h2(2.5)).energy - st.uks_below_ev, abs=1e-6)
    h = 1e-3
    e = [closed_shell_stability(lab, h2(2.5 + d), forces=True).uks.energy for d in (h, -h)]
    assert st.uks.forces[1, 2] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=2e-3)
    # the restricted label pulls the atoms together far harder: the dissociation error the UKS solution removes
    rks = lab.compute(h2(2.5)).forces[1, 2]
    assert rks < -1.0 and abs(st.uks.forces[1, 2]) < 0.1 * abs(rks)


def test_the_uks_check_finds_an_instability_that_breaks_spin_symmetry_from_a_spin_symmetric_solution():
    from dataclasses import replace

    from lam_lab.labelers.dft import _mean_field, _uks_instability

    lab = get_labeler("dft", basis="sto-3g")
    s = replace(lab.settings, lowest_solution=False)
    rks = lab.scf(Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 2.5]]))
    umf = _mean_field(rks.mol, s, unrestricted=True)
    umf.kernel(dm0=np.array([rks.make_rdm1() / 2] * 2))  # UKS kept on the closed-shell solution: alpha = beta
    assert umf.converged and umf.spin_square()[0] == pytest.approx(0.0, abs=1e-6)
    # its one unstable mode turns alpha and beta apart, a direction a spin-symmetric start vector has no part of
    # (PySCF's own UKS internal check, whose start is that, calls this solution stable with one root or three)
    mo = _uks_instability(umf)
    assert mo is not None
    lower = _mean_field(rks.mol, s, unrestricted=True)
    lower.kernel(dm0=lower.make_rdm1(mo, umf.mo_occ))
    assert lower.e_tot < umf.e_tot - 0.03 and lower.spin_square()[0] > 0.5  # Ha: the broken-symmetry solution
    assert _uks_instability(lower) is None


def test_lowest_solution_labels_a_biradical_with_broken_symmetry_uks_and_leaves_rks_cache_keys_alone():
    from lam_lab.labelers.dft import closed_shell_stability

    rks, lowest = get_labeler("dft", basis="sto-3g"), get_labeler("dft", basis="sto-3g", lowest_solution=True)
    near = Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 0.74]])
    far = Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 2.5]])
    assert lowest.compute(near).energy == pytest.approx(rks.compute(near).energy, abs=1e-8)
    bs = closed_shell_stability(rks, far, forces=True)
    got = lowest.compute(far)
    assert got.energy == pytest.approx(bs.uks.energy, abs=1e-6) and got.energy < rks.compute(far).energy - 1.0
    np.testing.assert_allclose(got.forces, bs.uks.forces, atol=1e-5)
    # RKS labels cached before the option existed keep their keys; labels on the lowest solution get their own
    assert "lowest_solution" not in rks.cache_identity()["settings"]
    assert frame_key(near, lowest.cache_identity()) != frame_key(near, rks.cache_identity())


def test_a_lowest_solution_calculator_follows_the_broken_symmetry_surface_and_its_hessian_is_that_surfaces():
    from lam_lab.labelers.dft import DFTCalculator, closed_shell_stability

    lowest = get_labeler("dft", basis="sto-3g", lowest_solution=True)
    calc = DFTCalculator(lowest)
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 2.0]], calculator=calc)
    h2.get_potential_energy()
    assert np.ndim(calc._dm) == 3  # the broken-symmetry density, carried to the next step
    h2.positions[1, 2] = 2.05
    seeded = h2.get_potential_energy()  # UKS straight from the last step's density
    frame = Frame(numbers=[1, 1], positions=h2.positions.copy())
    fresh = closed_shell_stability(get_labeler("dft", basis="sto-3g"), frame, forces=True).uks
    assert seeded == pytest.approx(fresh.energy, abs=1e-6)
    np.testing.assert_allclose(h2.get_forces(), fresh.forces, atol=1e-4)  # at the SCF tolerance
    near = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], calculator=calc)  # back to a closed shell: RKS again
    assert near.get_potential_energy() == pytest.approx(get_labeler("dft", basis="sto-3g").compute(
        Frame(numbers=[1, 1], positions=near.positions)).energy, abs=1e-6)
    # the analytic Hessian is the broken-symmetry surface's: the finite difference of its forces
    hess = lowest.hessian(frame)
    step = 1e-3
    f = [closed_shell_stability(get_labeler("dft", basis="sto-3g"), Frame(
        numbers=[1, 1], positions=frame.positions + [[0, 0, 0], [0, 0, d]]), forces=True).uks.forces for d in (step, -step)]
    # (within 2 %, as the closed-shell Hessian in tests/test_dft_hessian.py: PySCF's DFT Hessian omits grid response)
    assert hess[5, 5] == pytest.approx(-(f[0][1, 2] - f[1][1, 2]) / (2 * step), rel=0.02)
    assert hess[5, 5] < 0  # the broken-symmetry H–H bond at 2 Å is past its inflection: it softens as it stretches


def test_the_xtb_gap_closes_where_a_closed_shell_turns_biradical():
    from lam_lab.labelers.xtb import homo_lumo_gap

    planar = molecule("C2H4")
    twisted = planar.copy()
    for i in (2, 3):  # the CH2 on the first carbon turned 90° about the C=C axis: the π bond broken
        x, y, z = twisted.positions[i]
        twisted.positions[i] = [-y, x, z]
    assert homo_lumo_gap(Frame.from_atoms(planar)) > 4.0
    assert homo_lumo_gap(Frame.from_atoms(twisted)) < 0.1


def test_dft_unconverged_scf_is_a_failure_not_a_label():
    h2 = Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 0.76]])
    water = Frame.from_atoms(molecule("H2O"))
    res = get_labeler("dft", basis="sto-3g", max_cycle=1).label([water], executor=1, progress=False)
    assert res.n_labelled == 0 and res.n_failed == 1
    assert "SCF did not converge in 1 cycles" in res.failed[0].reason
    # an odd electron count with spin 0 is reported by PySCF; the next frame is still labelled
    h2_plus = h2.copy()
    h2_plus.info["charge"] = 1
    res = get_labeler("dft", basis="sto-3g").label([h2_plus, h2], executor=1, progress=False)
    assert res.indices == [1] and "spin" in res.failed[0].reason


def test_dft_rejects_periodic_frames():
    with pytest.raises(ValidationError, match="field pbc"):
        get_labeler("dft", basis="sto-3g").label(cu_frames(1), executor=1, progress=False)


# -- water force field -------------------------------------------------------------------------------
def test_tip3p_rigid_part_matches_ase():
    from ase.calculators.tip3p import TIP3P

    box = water_box()
    lab = get_labeler("tip3p", rc=4.5, width=1.0, flexible=False)
    out = lab.label(box, executor=1, progress=False).frames[0].labels["tip3p"]
    atoms = box.to_atoms()
    atoms.calc = TIP3P(rc=4.5, width=1.0)
    assert out.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    assert abs(out.energy) > 0.1  # molecules do interact in this box
    np.testing.assert_allclose(out.forces, atoms.get_forces(), atol=1e-9)
    assert "rigid" in lab.provenance().method
    # a water dimer without a cell: no virial, same energy as ASE
    dimer = Frame(box.numbers[:6], box.positions[:6].copy())
    dimer.positions[3:] += box.positions[0] - box.positions[3] + [2.9, 0.0, 0.0]
    atoms = dimer.to_atoms()
    atoms.calc = TIP3P(rc=4.5, width=1.0)
    got = lab.compute(dimer)
    assert got.virial is None and got.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    assert abs(got.energy) > 0.01


def test_flexible_tip3p_forces_and_virial_are_derivatives():
    from lam_lab.labelers.forcefield import water_energy

    box = water_box(seed=3)
    lab = get_labeler("tip3p", rc=4.5, width=1.0)
    out = lab.label(box, executor=1, progress=False).frames[0].labels["tip3p"]
    assert "CHARMM" in lab.provenance().method
    rigid = get_labeler("tip3p", rc=4.5, width=1.0, flexible=False).compute(box)
    assert abs(rigid.energy) > 0.05 and abs(out.energy - rigid.energy) > 0.05  # both parts present
    s, h = lab.settings, 1e-5
    fd = np.zeros_like(box.positions)
    for i in range(len(box)):
        for k in range(3):
            e = []
            for sign in (1, -1):
                f = box.copy()
                f.positions[i, k] += sign * h
                e.append(water_energy(f, s).energy)
            fd[i, k] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(out.forces, fd, atol=1e-6)
    w = np.zeros((3, 3))
    for k in range(3):
        for m in range(3):
            e = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[k, m] += sign * h
                f = box.copy()
                f.positions, f.cell = box.positions @ strain.T, box.cell @ strain.T
                e.append(water_energy(f, s).energy)
            w[k, m] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(out.virial, w, atol=1e-6)
    # a molecule split across the cell boundary is the same molecule
    moved = box.copy()
    moved.positions += [4.4, 0.0, 0.0]
    atoms = moved.to_atoms()
    atoms.wrap()
    assert water_energy(Frame.from_atoms(atoms), s).energy == pytest.approx(out.energy, abs=1e-9)


def test_tip3p_needs_ohh_order():
    box = water_box(n_side=1, length=6.0)
    swapped = Frame(box.numbers[[1, 0, 2]], box.positions[[1, 0, 2]], box.cell, box.pbc)
    with pytest.raises(ValidationError, match=r"frame 0, field numbers: TIP3P needs molecules in O,H,H order; atom 0 is H"):
        get_labeler("tip3p").label([swapped], executor=1, progress=False)


# -- cache -------------------------------------------------------------------------------------------
class CountingEMT(EMTLabeler):
    """EMT that counts its calls and can stop the run like a kill (KeyboardInterrupt) at call N."""

    calls = 0
    kill_at: int | None = None

    def compute(self, frame):
        CountingEMT.calls += 1
        if CountingEMT.kill_at is not None and CountingEMT.calls >= CountingEMT.kill_at:
            raise KeyboardInterrupt("simulated kill")
        return super().compute(frame)


def test_killed_run_resumes_from_cache(tmp_path):
    frames = cu_frames(3)
    CountingEMT.calls, CountingEMT.kill_at = 0, 3
    with pytest.raises(KeyboardInterrupt):
        CountingEMT().label(frames, cache_dir=tmp_path, executor=1, progress=False)
    assert len(LabelCache(tmp_path)) == 2  # the two finished frames were saved before the kill

    CountingEMT.calls, CountingEMT.kill_at = 0, None
    res = CountingEMT().label(frames, cache_dir=tmp_path, executor=1, progress=False)
    assert (res.n_cached, res.n_computed, CountingEMT.calls) == (2, 1, 1)

    res2 = CountingEMT().label(frames, cache_dir=tmp_path, executor=1, progress=False)
    assert (res2.n_cached, res2.n_computed, CountingEMT.calls) == (3, 0, 1)  # no new calls
    for a, b in zip(res.frames, res2.frames):
        assert a.labels["emt"].energy == b.labels["emt"].energy
        np.testing.assert_array_equal(a.labels["emt"].virial, b.labels["emt"].virial)


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    frames = cu_frames(2)
    lab = get_labeler("emt")
    first = lab.label(frames, cache_dir=tmp_path, executor=1, progress=False)
    path = LabelCache(tmp_path).path(frame_key(frames[0], {**lab.cache_identity(), "frame": {}}))
    assert path.is_file()
    path.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable label cache entry"):
        again = lab.label(frames, cache_dir=tmp_path, executor=1, progress=False)
    assert (again.n_cached, again.n_computed) == (1, 1)
    assert again.frames[0].labels["emt"].energy == first.frames[0].labels["emt"].energy


def test_cache_key_depends_on_structure_settings_and_charge():
    f = cu_frames(1)[0]
    ident = get_labeler("emt").cache_identity()
    key = frame_key(f, ident)
    nudged = f.copy()
    nudged.positions += 1e-9  # text-format noise
    assert frame_key(nudged, ident) == key
    moved = f.copy()
    moved.positions[0, 0] += 1e-3
    assert frame_key(moved, ident) != key
    assert frame_key(f, get_labeler("emt", asap_cutoff=True).cache_identity()) != key
    xtb = get_labeler("xtb")
    water = Frame.from_atoms(molecule("H2O"))
    ion = water.copy()
    ion.info["charge"] = -1
    assert xtb.frame_params(ion) == {"charge": -1, "spin": 0}
    k0 = frame_key(water, {**xtb.cache_identity(), "frame": xtb.frame_params(water)})
    k1 = frame_key(ion, {**xtb.cache_identity(), "frame": xtb.frame_params(ion)})
    assert k0 != k1
    # thread counts do not change the numbers, so they do not change the key
    assert get_labeler("dft", threads=1).cache_identity() == get_labeler("dft", threads=2).cache_identity()


def test_failures_are_cached_and_can_be_retried(tmp_path):
    bad = Frame.from_atoms(molecule("H2O"), info={"spin": 1})
    lab = get_labeler("xtb")
    first = lab.label([bad], cache_dir=tmp_path, executor=1, progress=False)
    again = lab.label([bad], cache_dir=tmp_path, executor=1, progress=False)
    assert (again.n_cached, again.n_failed) == (1, 1) and again.failed[0].reason == first.failed[0].reason
    retried = lab.label([bad], cache_dir=tmp_path, executor=1, progress=False, retry_failed=True)
    assert (retried.n_cached, retried.n_computed, retried.n_failed) == (0, 1, 1)


# -- results, datasets, progress ---------------------------------------------------------------------
def test_dataset_in_dataset_out_with_provenance():
    ds = Dataset(cu_frames(2), name="cu", provenance=Provenance(builder="test", seed=7))
    out = get_labeler("emt").label_dataset(ds, executor=1, progress=False)
    assert isinstance(out, Dataset) and out.name == "cu" and len(out) == 2
    assert out.label_sets == ["emt"] and out.provenance.seed == 7
    assert out.provenance.labels["emt"].software == "ase" and "ase" in out.provenance.versions
    assert ds.provenance.labels == {}  # the input provenance is not modified
    assert "emt" in str(out.summary())


def test_progress_bar_only_when_asked(capsys):
    lab = get_labeler("emt")
    lab.label(cu_frames(2), executor=1, progress=False)
    assert "label emt" not in capsys.readouterr().err
    lab.label(cu_frames(2), executor=1, progress=True)
    assert "label emt" in capsys.readouterr().err


def test_custom_labeler_subclass_and_non_finite_results():
    from lam_lab.data import Labels

    class Broken(Labeler):
        software = "test"

        @property
        def name(self) -> str:
            return "broken"

        def compute(self, frame):
            return Labels(float("nan"), np.zeros((len(frame), 3)))

    res = Broken(None).label(cu_frames(1), executor=1, progress=False)
    assert res.n_failed == 1 and "energy nan" in res.failed[0].reason
