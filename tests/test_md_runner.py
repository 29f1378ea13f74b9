"""MD runner and guards with real calculators (EMT, Lennard-Jones, a tiny lam_lab model): conservation,
thermostats, incremental trajectories, observers, stop requests, and every guard on a constructed case."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.io import read

from lam_lab.md.guards import GuardConfig, MDGuardError
from lam_lab.md.runner import MDConfig, MDRunner, run_md


def cu_cell(repeat: int = 2, seed: int = 1) -> Atoms:
    atoms = bulk("Cu", cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def tiny_student(scale: float = 1.0):
    """A float64 student with small layers; ``scale`` stiffens its (untrained) energy surface."""
    import lam_lab as ll
    from lam_lab.data import Frame

    torch.manual_seed(0)
    model = ll.build_model("student", ["H", "C", "O"], dtype="float64", tebd_dim=4, repinit_rcut=4.0,
                           repinit_rcut_smth=1.0, repinit_sel=20, repinit_neuron=(8,), repinit_axis=4,
                           fitting_neuron=(16, 16), neighbor_norm="sel")  # force scale independent of the data
    model.fit_input_stats([Frame.from_atoms(molecule("CH3CH2OH"))])
    with torch.no_grad():
        model.fittings[0].mlp.out.weight.mul_(scale)
    return model


def head_on(symbols: str, distance: float, speed: float) -> Atoms:
    """Two atoms ``distance`` Å apart flying at each other, each at ``speed`` Å/fs."""
    from ase import units

    atoms = Atoms(symbols, positions=[[0, 0, 0], [distance, 0, 0]])
    v = np.array([[speed, 0, 0], [-speed, 0, 0]]) * (units.Ang / units.fs)
    atoms.set_velocities(v)
    return atoms


# -- integrators --------------------------------------------------------------------------------------
def test_nve_emt_copper_conserves_energy():
    res = run_md(cu_cell(), EMT(), ensemble="nve", steps=100, timestep=2.0, interval=10, temperature=300, seed=0)
    assert res.completed and res.steps_done == 100 and len(res.frames) == 11
    assert res.steps.tolist() == list(range(0, 101, 10)) and res.times[-1] == pytest.approx(200.0)
    swing = 1000 * np.ptp(res.ekin) / res.n_atoms  # meV/atom exchanged between Ekin and Epot
    assert swing > 5.0
    assert res.fluctuation() < 0.05 and abs(res.drift()) < 0.5  # meV/atom, meV/atom/ps


def test_nve_tiny_lam_model_conserves_energy():
    from lam_lab.md.calculator import LAMCalculator

    model = tiny_student(scale=10.0)  # forces ~0.2 eV/Å: Ekin and Epot trade ~14 meV/atom in 25 fs
    res = run_md(molecule("CH3CH2OH"), LAMCalculator(model), steps=50, timestep=0.5, interval=5, temperature=300)
    assert res.completed and len(res.frames) == 11
    swing = 1000 * np.ptp(res.ekin) / res.n_atoms
    assert swing > 3.0
    assert res.fluctuation() < 0.02 * swing and res.fluctuation() < 0.5


def test_initial_velocities_are_seeded_with_zero_momentum():
    atoms = molecule("CH3CH2OH")
    a = run_md(atoms, EMT(), steps=0, seed=7, temperature=500)
    b = run_md(atoms, EMT(), steps=0, seed=7, temperature=500)
    c = run_md(atoms, EMT(), steps=0, seed=8, temperature=500)
    p = a.frames[0].get_momenta()
    np.testing.assert_array_equal(p, b.frames[0].get_momenta())
    assert not np.allclose(p, c.frames[0].get_momenta())
    np.testing.assert_allclose(p.sum(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(a.frames[0].get_angular_momentum(), 0.0, atol=1e-8)
    assert 100 < a.temperature[0] < 1500


@pytest.mark.parametrize("ensemble", ["langevin", "bussi", "nose-hoover"])
def test_thermostats_reach_the_target_temperature(ensemble):
    res = run_md(cu_cell(), EMT(), ensemble=ensemble, temperature=600.0, init_temperature=100.0, steps=200,
                 timestep=2.0, interval=5, friction=0.05, taut=20.0, seed=3)
    assert res.completed
    late = res.temperature[len(res.temperature) // 2:].mean()
    assert 400 < late < 800, late


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="ensemble"):
        MDConfig(ensemble="npt")
    with pytest.raises(ValueError, match="timestep"):
        MDConfig(timestep=0)
    with pytest.raises(ValueError, match=".traj"):
        run_md(cu_cell(1), EMT(), steps=1, trajectory="out.dat")
    with pytest.raises(ValueError, match="calculator"):
        MDRunner(cu_cell(1))


# -- trajectory, observers, stop -----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".traj", ".extxyz"])
def test_trajectory_is_written_incrementally_and_readable_mid_run(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    seen = {}

    def peek(rec):
        if rec.step == 20:
            frames = read(str(path), ":")
            seen["n"] = len(frames)
            seen["last"] = frames[-1]

    res = run_md(cu_cell(1), EMT(), steps=40, interval=5, timestep=2.0, trajectory=str(path), observers=[peek])
    assert seen["n"] == 5  # steps 0, 5, 10, 15, 20 were on disk while the run went on
    assert seen["last"].info["step"] == 20 and seen["last"].info["time_fs"] == pytest.approx(40.0)
    frames = read(str(path), ":")
    assert len(frames) == 9 and res.trajectory == str(path)
    for f, e, t in zip(frames, res.epot, res.temperature):
        assert f.get_potential_energy() == pytest.approx(e)
        assert f.info["temperature"] == pytest.approx(t)
        assert f.info["etot"] == pytest.approx(f.info["epot"] + f.info["ekin"])
        assert f.get_forces().shape == (4, 3)


def test_observers_get_named_records_at_their_interval():
    every5, every2 = [], []
    runner = MDRunner(cu_cell(1), EMT(), steps=10, interval=5, timestep=2.0)
    runner.add_observer(every5.append)
    runner.add_observer(every2.append, every=2)
    res = runner.run()
    assert [r.step for r in every5] == [0, 5, 10]
    assert [r.step for r in every2] == [0, 2, 4, 6, 8, 10]
    rec = every5[-1]
    assert rec.time == pytest.approx(20.0) and rec.etot == pytest.approx(rec.epot + rec.ekin)
    assert rec.epot == pytest.approx(res.epot[-1]) and len(rec.atoms) == 4 and rec.temperature > 0
    with pytest.raises(RuntimeError, match="once"):
        runner.run()


def test_stop_request_from_an_observer_ends_at_that_step():
    runner = MDRunner(cu_cell(1), EMT(), steps=100, interval=5, timestep=2.0)
    runner.add_observer(lambda r: r.step == 7 and runner.request_stop("enough"), every=1)
    res = runner.run()
    assert res.status == "stopped" and "enough" in res.reason and res.steps_done == 7
    assert res.steps.tolist() == [0, 5, 7]  # the step it stopped at is kept too


def test_stop_request_from_another_thread():
    runner = MDRunner(cu_cell(1), EMT(), steps=100000, interval=10, timestep=2.0)
    started = threading.Event()
    runner.add_observer(lambda r: started.set(), every=10)
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("res", runner.run()))
    th.start()
    assert started.wait(60)
    runner.request_stop()
    th.join(60)
    res = box["res"]
    assert res.status == "stopped" and res.steps_done < 100000
    assert res.steps[-1] == res.steps_done  # ended on a step boundary with that step recorded


# -- guards ---------------------------------------------------------------------------------------------
def test_close_contact_guard_keeps_the_frames_before(tmp_path):
    path = tmp_path / "close.traj"
    # a soft, short-ranged LJ lets two atoms run into each other
    atoms = head_on("H2", 2.0, 0.05)
    res = run_md(atoms, LennardJones(sigma=0.1, epsilon=1e-3, rc=3.0), steps=200, timestep=0.5, interval=5,
                 keep_momenta=True, trajectory=str(path), on_guard="stop")
    assert res.status == "guard" and res.trip.kind == "close_contact"
    assert "H0 and H1" in res.reason and "min_distance 0.5" in res.reason and res.trip.atoms == (0, 1)
    assert len(res.frames) >= 4 and res.frames[-1].info["step"] < res.trip.step
    assert res.bad_frame.get_distance(0, 1) < 0.5
    kept = read(str(path), ":")
    assert len(kept) == len(res.frames) and all(f.get_distance(0, 1) >= 0.5 for f in kept)


def test_atoms_placed_too_close_stop_at_step_zero():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.3, 0, 0]])
    res = run_md(atoms, LennardJones(sigma=0.1, epsilon=1e-3, rc=3.0), steps=10, on_guard="stop")
    assert res.trip.kind == "close_contact" and res.trip.step == 0 and "0.300 Å" in res.reason
    assert len(res.frames) == 0 and res.steps_done == 0


def test_force_guard_on_a_copper_collision():
    # EMT Cu2 pushed from 2.3 Å towards 1.6 Å, where its repulsion passes 20 eV/Å
    res = run_md(head_on("Cu2", 2.3, 0.035), EMT(), steps=200, timestep=0.5, interval=2, keep_momenta=True,
                 guards=GuardConfig(max_force=20.0, max_temperature=1e6), on_guard="stop")
    assert res.trip.kind == "force" and "above max_force 20.0 eV/Å" in res.reason
    assert len(res.frames) >= 3
    assert np.abs(res.frames[-1].get_forces()).max() <= 20.0
    assert np.linalg.norm(res.bad_frame.get_forces(), axis=1).max() > 20.0


def test_temperature_guard_when_a_thermostat_overheats(capsys):
    res = run_md(cu_cell(1), EMT(), ensemble="langevin", temperature=30000.0, init_temperature=300.0, friction=0.2, steps=400, timestep=1.0,
                 interval=5, guards=GuardConfig(max_temperature=2000.0), on_guard="warn")
    assert res.trip.kind == "temperature" and "past 2000 K" in res.reason
    assert len(res.frames) >= 1 and np.all(res.temperature <= 2000.0)
    assert "stopped by a guard" in capsys.readouterr().err


def test_nan_from_a_model_with_nan_weights_raises_and_keeps_frames(tmp_path):
    from lam_lab.md.calculator import LAMCalculator

    model = tiny_student()
    path = tmp_path / "nan.extxyz"

    def poison(rec):
        if rec.step == 10:
            with torch.no_grad():
                model.fittings[0].mlp.out.weight.fill_(float("nan"))

    with pytest.raises(MDGuardError) as err:
        run_md(molecule("CH3CH2OH"), LAMCalculator(model), steps=30, interval=5, trajectory=str(path),
               observers=[poison], on_guard="raise")
    trip, res = err.value.trip, err.value.result
    assert trip.kind == "nonfinite" and trip.step == 11 and "energy" in trip.reason
    assert res.steps.tolist() == [0, 5, 10] and np.all(np.isfinite(res.etot))
    assert len(read(str(path), ":")) == 3


def test_calculator_failure_is_a_guard_stop():
    atoms = Atoms("U2", positions=[[0, 0, 0], [2.5, 0, 0]])  # EMT has no uranium parameters
    res = run_md(atoms, EMT(), steps=5, on_guard="stop")
    assert res.trip.kind == "calculator" and "calculator failed" in res.reason and len(res.frames) == 0


# -- command line ------------------------------------------------------------------------------------------
def test_cli_runs_md_on_a_structure_file(tmp_path):
    import json

    from ase.io import write

    from lam_lab.cli import main
    from lam_lab.cli.md import EXIT_GUARD

    src = tmp_path / "cu.xyz"
    write(src, cu_cell(1))
    out, summary = tmp_path / "md.traj", tmp_path / "md.json"
    rc = main(["md", "emt", str(src), "--steps", "10", "--interval", "5", "--timestep", "2", "--ensemble", "langevin",
               "--output", str(out), "--json", str(summary), "--quiet"])
    assert rc == 0 and len(read(str(out), ":")) == 3
    assert json.loads(summary.read_text())["status"] == "completed"
    write(src, Atoms("Cu2", positions=[[0, 0, 0], [1.0, 0, 0]]))  # EMT repulsion ~240 eV/Å
    assert main(["md", "emt", str(src), "--steps", "5", "--output", str(out), "--quiet"]) == EXIT_GUARD
    assert main(["md", "emt", "not-a-file-nor-smiles", "--steps", "5"]) == 2
