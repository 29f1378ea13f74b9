"""Committee uncertainty: per-atom force disagreement, the most uncertain frames, and DFT labels for the Δ set."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from ase.build import molecule

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.distill.uncertainty import (
    can_join,
    extend,
    force_disagreement,
    frame_uncertainty,
    label_for_delta,
    most_uncertain,
)

TINY = TINY_DPA2


@pytest.fixture(scope="module")
def committee():
    """Two tiny H/O models with different random weights (a fresh model's last layer is zero: no forces), so they disagree."""
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = ll.build_model("dpa2-small", ["H", "O"], **TINY)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        members.append(model)
    return members


def _frames(n: int = 6) -> list:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        m = molecule("H2O")
        m.positions += rng.normal(scale=0.02 + 0.05 * k, size=m.positions.shape)  # later frames more distorted
        out.append(m)
    return out


def test_disagreement_is_zero_for_one_model_twice_and_ranks_frames(committee):
    frames = _frames()
    a, b = committee
    same = force_disagreement(frames, [a, a])
    assert all(np.allclose(d, 0.0) for d in same)
    d = force_disagreement(frames, [a, b])
    assert [x.shape for x in d] == [(3,)] * 6 and all(np.all(x >= 0) for x in d) and max(x.max() for x in d) > 0
    score = frame_uncertainty(d)
    top = most_uncertain(frames, [a, b], k=3)
    assert top[0] == int(np.argmax(score)) and len(set(top)) == 3
    assert list(np.argsort(-score)[:3]) == top
    spaced = most_uncertain(frames, k=3, min_separation=2, disagreement=d)
    assert all(abs(i - j) >= 2 for i in spaced for j in spaced if i != j)
    assert most_uncertain(frames, [a, b], k=0) == []
    with pytest.raises(ValueError, match="at least 2"):
        force_disagreement(frames, [a])


@pytest.mark.skipif(importlib.util.find_spec("pyscf") is None or importlib.util.find_spec("tblite") is None,
                    reason="needs PySCF and tblite")
def test_uncertain_frames_get_dft_and_baseline_labels_for_the_delta_set(committee):
    frames = _frames(4)
    top = most_uncertain(frames, committee, k=2)
    new = label_for_delta(frames, top, dft="pbe/sto-3g", dft_settings={"grids_level": 1, "conv_tol": 1e-7})
    assert len(new) == 2 and set(new.label_sets) >= {"pbe/sto-3g", "gfn2-xtb"}
    for f, i in zip(new, top):
        assert np.allclose(f.positions, frames[i].positions)
        assert f.labels["pbe/sto-3g"].forces.shape == (3, 3) and np.isfinite(f.labels["gfn2-xtb"].energy)
    grown = extend(extend(None, new, name="delta-set"), new)
    assert len(grown) == 4 and grown.name == "delta-set"


def test_new_dft_frames_join_a_delta_set_only_on_its_scf_surface():
    """Frames labelled by DFT join a set (e.g. rxn-dft) only where their label sets are its own on the same surface:
    restricted labels never join a set labelled on the lowest SCF solution, and extra sets the base keeps (its
    closed-shell labels beside the lowest ones) are not asked of them."""
    from lam_lab.data.dataset import LabelProvenance, Provenance
    from lam_lab.data.frame import Frame, Labels

    def made(labels: dict[str, bool]) -> ll.data.Dataset:
        f = Frame(np.array([1, 1]), np.array([[0.0, 0, 0], [0.74, 0, 0]]), None, [False] * 3,
                  {k: Labels(energy=-1.0, forces=np.zeros((2, 3))) for k in labels})
        prov = Provenance(labels={k: LabelProvenance(k, settings={"lowest_solution": low} if low else {})
                                  for k, low in labels.items()})
        return ll.data.Dataset([f], name="x", provenance=prov)

    lowest = made({"wb97x/6-31g*": True, "gfn2-xtb": False, "wb97x-rks/6-31g*": False})
    restricted = made({"wb97x/6-31g*": False, "gfn2-xtb": False})
    assert can_join(made({"wb97x/6-31g*": True, "gfn2-xtb": False}), lowest)
    assert not can_join(restricted, lowest) and not can_join(made({"wb97x/6-31g*": True, "gfn2-xtb": False}), restricted)
    assert can_join(made({"wb97x/6-31g*": False, "gfn2-xtb": False}), restricted)
    assert not can_join(made({"gfn2-xtb": False}), restricted)  # no DFT label: nothing to learn
    assert not can_join(made({"pbe/sto-3g": False, "gfn2-xtb": False}), restricted)


@pytest.mark.skipif(importlib.util.find_spec("pyscf") is None or importlib.util.find_spec("tblite") is None,
                    reason="needs PySCF and tblite")
def test_md_tab_colours_atoms_by_disagreement_and_labels_frames_into_the_delta_set(committee):
    from lam_lab.ui.lab import Lab

    lab = Lab(builtins=[])
    box, a, b = lab.md.uncertainty, *committee
    box.members.value = ()
    assert box.compute() is False and "at least two" in box.error
    lab.md.model.add(a, "seed 0", select=False)
    lab.md.model.add(b, "seed 1", select=False)
    box.members.value = (f"seed 0 · {a.heads[0]}", f"seed 1 · {b.heads[0]}")
    assert box.compute() is False and "run MD" in box.error  # nothing in the player yet
    frames = _frames(5)
    player = lab.playback.show(frames)
    assert box.compute() is True
    box.job.wait(120)
    assert box.job.state == "done", box.job.error
    values = player.frame_values()
    assert values.shape == (5,) and values.max() > 0 and player.color_by == "values"
    assert "frame" in box.message.value and "eV/Å" in box.message.value
    with pytest.raises(ll.data.DataError, match="shape"):
        player.set_atom_values(np.zeros((4, 3)))
    offered = []
    box.on_data.append(lambda ds, label: offered.append(label))
    box.dft.value = "pbe/sto-3g"
    assert box.label(k=2) is True
    box.label_job.wait(300)
    assert box.label_job.state == "done", box.label_job.error
    assert len(box.delta_set) == 2 and set(box.chosen) <= set(range(5)) and box.chosen[0] == int(values.argmax())
    assert offered == ["uncertain frames (2)"]
    ft = lab.finetune
    if hasattr(ft, "downstream"):  # the Fine-tune tab lists the set, without selecting it
        assert "uncertain frames (2)" in ft.downstream.options and ft.downstream.value != "uncertain frames (2)"
