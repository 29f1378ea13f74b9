"""Reactive MD from a TS: the end classifier on synthetic bond graphs, and HCN⇌HNC end to end on GFN2-xTB."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from lam_lab.md.reactive import ReactiveConfig, TransitionState, bond_graph, classify_graph, find_ts, run_reactive

# a 4-atom toy rearrangement: A–B + C–D -> A–C + B–D; the spectator bond (0, 1) stays in "full" mode
R = {(0, 1), (2, 3)}
P = {(0, 2), (1, 3)}


def test_classifier_names_reactant_product_other():
    assert classify_graph(R, R, P) == "reactant"
    assert classify_graph([(3, 2), (1, 0)], R, P) == "reactant"  # order of a pair does not matter
    assert classify_graph(P, R, P) == "product"
    assert classify_graph(R | P, R, P) == "other"  # bonds of both sides: stuck at the TS
    assert classify_graph(set(), R, P) == "other"  # everything dissociated
    assert classify_graph({(0, 1)}, R, P) == "other"


def test_classifier_can_look_only_at_reacting_bonds():
    r, p = R | {(4, 5)}, P | {(4, 5)}
    spectator_broken = {(0, 2), (1, 3)}  # product, but the spectator 4–5 bond is stretched away
    assert classify_graph(spectator_broken, r, p) == "other"
    assert classify_graph(spectator_broken, r, p, only_reacting=True) == "product"
    with pytest.raises(ValueError, match="same bond graph"):
        classify_graph(R, R, R)


def test_bond_graph_of_a_molecule():
    from ase.build import molecule

    g = bond_graph(molecule("H2O"))
    assert g == frozenset({(0, 1), (0, 2)})


@pytest.fixture(scope="module")
def hcn_ts():
    from lam_lab.sampling.neb import NEBConfig
    from lam_lab.sampling.ts import TSConfig

    return find_ts("hcn-hnc", "xtb", TSConfig(neb=NEBConfig(n_images=5, steps=40)))


def test_builtin_ts_is_only_ever_a_verified_saddle():
    from lam_lab.data.errors import DataError
    from lam_lab.md.reactive import builtin_ts, verified_reactions

    assert {"diels-alder", "hcn-hnc"} <= set(verified_reactions())
    ts = builtin_ts("diels-alder")
    assert ts.method.startswith("verified saddle") and ts.converged and 0.3 < ts.barrier < 2.0
    with pytest.raises(DataError, match="no verified"):
        builtin_ts("h-shift-15")  # GFN2-xTB's saddle failed the IRC check: never handed out as a TS


def test_builtin_ts_hands_out_the_saddle_verified_on_the_functionals_lowest_surface_first():
    from lam_lab.md.reactive import builtin_ts

    lowest, restricted = builtin_ts("oxirane"), builtin_ts("oxirane", "dft")
    assert "lowest solution" in lowest.method and lowest.converged
    # oxirane's ring opening is biradical: its broken-symmetry saddle lies far below the closed-shell one
    assert lowest.barrier < restricted.barrier - 0.5
    assert builtin_ts("claisen").method == "verified saddle, wb97x/6-31g*"  # closed-shell stable: no second search


def test_hcn_reactive_md_end_to_end(hcn_ts, tmp_path):
    ts = TransitionState.load(hcn_ts.save(tmp_path / "ts.extxyz"))
    assert ts.name == "hcn-hnc" and ts.method == "verified saddle, xtb" and ts.barrier == pytest.approx(hcn_ts.barrier)
    np.testing.assert_allclose(ts.ts.positions, hcn_ts.ts.positions, atol=1e-6)
    r_graph, p_graph = bond_graph(ts.reactant), bond_graph(ts.product)
    assert r_graph != p_graph  # H on C vs H on N
    cfg = ReactiveConfig(n_trajectories=2, steps=30, interval=5, temperature=300.0, seed=1,
                         output_dir=str(tmp_path / "out"))
    res = run_reactive(ts, "xtb", cfg)
    assert len(res.outcomes) == 2
    assert sum(res.fractions.values()) == pytest.approx(1.0)
    assert 0.0 <= res.reactive_fraction <= 1.0
    assert res.energies["ts"] > max(res.energies["reactant"], res.energies["product"])
    for o in res.outcomes:
        assert o.backward in ("reactant", "product", "other") and o.forward in ("reactant", "product", "other")
        assert len(o.frames) == 2 * 6 + 1  # 6 recorded frames per half after the TS, the TS once
        assert np.all(np.diff(o.times) > 0) and o.times[0] == pytest.approx(-15.0)
        ts_frame = o.frames[6]
        np.testing.assert_allclose(ts_frame.positions, ts.ts.positions, atol=1e-12)
        if o.kind == "reactive":  # stored reactant side first
            assert bond_graph(o.frames[0]) == r_graph or o.bonds.bonds_at(0) == set(r_graph)
        assert (tmp_path / "out" / f"traj_{o.index:03d}.extxyz").exists()
    summary = json.loads(json.dumps(res.to_dict(), default=str))
    assert summary["name"] == "hcn-hnc" and len(summary["outcomes"]) == 2
    assert "reactive" in res.summary()


def test_reactive_joined_path_reads_reactant_to_product(hcn_ts):
    """Whatever the sampled velocities, a path joining both wells is stored starting in the reactant well."""
    res = run_reactive(hcn_ts, "xtb", n_trajectories=1, steps=40, interval=10, seed=4)
    o = res.outcomes[0]
    first, last = bond_graph(o.frames[0]), bond_graph(o.frames[-1])
    if o.kind == "reactive":
        assert (first, last) == (res.reactant_graph, res.product_graph)
    else:
        assert o.kind in ("recrossing-reactant", "recrossing-product", "other")


def test_transition_state_file_needs_all_three_roles(tmp_path):
    from ase.io import write

    from lam_lab.data.errors import DataError

    path = tmp_path / "bad.extxyz"
    write(path, [Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], info={"role": "ts"})], format="extxyz")
    with pytest.raises(DataError, match="missing"):
        TransitionState.load(path)


def test_stop_request_keeps_finished_trajectories(hcn_ts):
    from lam_lab.md.reactive import ReactiveMD

    holder = {}

    def after_first(outcome):
        holder["md"].request_stop()

    md = ReactiveMD(hcn_ts, "xtb", ReactiveConfig(n_trajectories=5, steps=10, interval=5), on_outcome=after_first)
    holder["md"] = md
    res = md.run()
    assert len(res.outcomes) == 1
