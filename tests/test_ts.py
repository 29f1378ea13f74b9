"""Transition states: find_ts (CI-NEB → Sella → one imaginary mode → IRC) at GFN2-xTB; failures are never verified."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from lam_lab.datasets.reactions import get_reaction
from lam_lab.sampling.molecules import mapped_pair
from lam_lab.sampling.neb import relax, xtb_calculator
from lam_lab.sampling.ts import TSResult, find_ts, verify_ts
from lam_lab.sampling.vibrations import fd_hessian, harmonic, normal_mode_samples


@pytest.fixture(scope="module")
def hcn():
    rx = get_reaction("hcn-hnc")
    ends = mapped_pair(rx.reactant, rx.product, rx.name, seed=0)
    return find_ts(ends.reactant, ends.product)


def test_find_ts_hcn_hnc_is_a_verified_saddle(hcn):
    assert hcn.status == "verified" and hcn.verified
    assert len(hcn.imaginary_frequencies) == 1 and hcn.imaginary_frequencies[0] < -500
    assert hcn.irc_connects and sorted(hcn.provenance["irc_ends"]) == ["product", "reactant"]
    # the refined saddle sits where the climbing image was
    assert abs(hcn.barrier - hcn.provenance["neb_barrier_eV"]) < 0.02
    assert hcn.barrier > 1.0 and abs(hcn.reaction_energy) < hcn.barrier
    arcs = [a.info["irc_arc"] for a in hcn.irc]
    assert arcs == sorted(arcs) and arcs[0] < 0 < arcs[-1]
    energies = [a.info["energy"] for a in hcn.irc]
    assert max(energies) == pytest.approx(hcn.ts.get_potential_energy(), abs=1e-6)


def test_ts_result_round_trips_through_json(hcn):
    import json

    back = TSResult.from_dict(json.loads(json.dumps(hcn.to_dict())))
    assert back.status == hcn.status and back.barrier == hcn.barrier
    np.testing.assert_allclose(back.ts.positions, hcn.ts.positions)
    np.testing.assert_allclose(back.modes, hcn.modes)
    assert back.ts.get_potential_energy() == pytest.approx(hcn.ts.get_potential_energy())
    assert [a.info["irc_arc"] for a in back.irc] == [a.info["irc_arc"] for a in hcn.irc]


def test_a_minimum_given_as_the_ts_is_never_verified(hcn):
    res = verify_ts(hcn.reactant, hcn.reactant, hcn.product)
    assert res.status == "imaginary_modes_0" and not res.verified and not res.irc_connects
    assert res.imaginary_frequencies == []


def test_unconverged_saddle_is_reported_not_verified(hcn):
    res = verify_ts(hcn.ts, hcn.reactant, hcn.product, converged=False)
    assert res.status == "saddle_not_converged" and not res.verified


def test_water_harmonic_modes_project_out_rigid_motions():
    water = relax(Atoms("OH2", [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), xtb_calculator)
    modes = harmonic(water, fd_hessian(water, xtb_calculator))
    assert len(modes.frequencies) == 3 and np.all(modes.frequencies > 1000)  # bend ~1500, stretches ~3600
    assert np.allclose(np.linalg.norm(modes.modes.reshape(3, -1), axis=1), 1.0)
    xs = normal_mode_samples(water, modes, 300.0, 5, seed=1)
    disp = [np.abs(x - water.positions).max() for x in xs]
    assert 0 < max(disp) < 0.3


def test_a_refinement_stopped_after_a_step_resumes_from_its_checkpoints(hcn):
    """refine_at_level keeps the minima, the saddle and the Hessian as checkpoints; a second search reads them and
    computes nothing (here GFN2-xTB refines its own saddle, standing in for a DFT level)."""
    from lam_lab.sampling.ts_refine import refine_at_level

    store: dict[str, dict] = {}

    def checkpoint(tag, make):
        if tag not in store:
            store[tag] = make()
        return store[tag]

    xtb_hessian = lambda a: fd_hessian(a, xtb_calculator)  # noqa: E731
    first = refine_at_level(hcn, xtb_calculator, xtb_hessian, checkpoint=checkpoint)
    assert first.status == "verified" and sorted(store) == ["hessian", "product", "reactant", "saddle"]

    def no_calculation(_atoms):
        raise AssertionError("a checkpointed step was computed again")

    again = refine_at_level(hcn, no_calculation, no_calculation, checkpoint=checkpoint)
    assert again.status == first.status and again.barrier == pytest.approx(first.barrier, abs=1e-9)
    np.testing.assert_allclose(again.ts.positions, first.ts.positions)
    np.testing.assert_allclose(again.frequencies, first.frequencies)
    # a search stopped after its minima computes only the rest
    del store["saddle"], store["hessian"]
    third = refine_at_level(hcn, xtb_calculator, xtb_hessian, checkpoint=checkpoint)
    assert third.barrier == pytest.approx(first.barrier, abs=1e-6)
