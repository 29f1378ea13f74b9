"""Closed-shell labels checked against the functional's lowest solution: the checks file and the labels it gives."""

from __future__ import annotations

import numpy as np
import pytest

from lam_lab.data import Frame
from lam_lab.datasets.closed_shell import (
    RESTRICTED_SADDLE,
    check,
    check_screened,
    checks_path,
    labels_limit,
    read_checks,
    restricted_name,
    to_check,
    with_lowest_solution,
    xtb_gap,
)
from lam_lab.labelers import get_labeler
from lam_lab.labelers.dft import closed_shell_stability


def _h2(r: float, split: str, role: str | None = None) -> Frame:
    info = {"split": split, "reaction": "h2-dissociation", **({"role": role} if role else {})}
    return Frame(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, r]], info=info)


def test_checks_resume_and_put_broken_symmetry_labels_on_the_unstable_frames_only(tmp_path):
    lab = get_labeler("dft", basis="sto-3g")
    frames = [_h2(0.74, "val"), _h2(2.5, "test", role="ts"), _h2(2.0, "train"), _h2(0.9, "train")]
    for f in frames:
        f.labels["dft"] = lab.compute(f)
    gaps = np.array([xtb_gap(f) for f in frames])
    assert gaps[1] < gaps[2] < gaps[3] < gaps[0]  # the gap closes as the bond stretches

    below = float(gaps[0])  # the equilibrium frame is screened out; the other three go to DFT
    todo = to_check(frames, gaps, below)
    assert todo == [1, 2, 3]  # held-out frames first, then validation, then training, smallest gap first
    path, said = tmp_path / "stages" / "closed-shell-checks.jsonl.gz", []
    rows = check([frames[i] for i in todo[:2]], path, labeler=lab, say=said.append)
    assert len(said) == 2 and [r["stable"] for r in rows] == [False, False]
    again = check([frames[i] for i in todo[:2]], path, labeler=lab, say=said.append)
    assert len(said) == 2 and again == rows  # resumed from the file, nothing computed twice

    out = with_lowest_solution(frames, read_checks(path), "dft", gaps, below)
    assert [f.info["closed_shell"] for f in out] == ["screened", "broken-symmetry", "broken-symmetry", "unchecked"]
    bs = closed_shell_stability(lab, frames[1], forces=True)
    assert out[1].labels["dft"].energy == pytest.approx(bs.uks.energy, abs=1e-6)
    np.testing.assert_allclose(out[1].labels["dft"].forces, bs.uks.forces, atol=1e-5)
    assert out[1].info["uks_below_ev"] == pytest.approx(bs.uks_below_ev, abs=1e-4) and bs.uks_below_ev > 1.0
    assert out[1].info["role"] == RESTRICTED_SADDLE  # verified on the restricted surface only, so no longer a ts
    for i in (0, 3):  # screened out or not checked yet: the RKS labels as they were
        assert out[i].labels["dft"].energy == frames[i].labels["dft"].energy
    for f, before in zip(out, frames):  # the closed-shell labels kept beside, for every frame
        assert f.labels["dft-rks"] is before.labels["dft"]
    assert restricted_name("wb97x/6-31g*") == "wb97x-rks/6-31g*"
    # a model card's limits say which solution its training labels are
    assert "lowest solution where checked" in labels_limit(out) and "2 frames broken-symmetry" in labels_limit(out)
    assert labels_limit(frames).startswith("the labels are closed-shell (RKS)")
    # the input frames are left as they were
    assert frames[1].info["role"] == "ts" and "closed_shell" not in frames[1].info
    assert frames[1].labels["dft"].energy == pytest.approx(lab.compute(frames[1]).energy)


def test_workers_share_the_screened_frames_and_need_no_labels(tmp_path):
    lab = get_labeler("dft", basis="sto-3g")
    frames = [_h2(0.74, "val"), _h2(2.5, "train"), _h2(2.0, "train"), _h2(1.6, "train")]  # unlabelled, as selected
    below = float(xtb_gap(frames[0]))  # the equilibrium frame is screened out
    said: list[str] = []
    for shard in ((0, 2), (1, 2)):
        check_screened(frames, tmp_path, shard, below, said.append, labeler=lab)
    checked = read_checks(checks_path(tmp_path))
    assert len(checked) == 3 and sum("atoms)" in s for s in said) == 3  # each frame under the screen once
    check_screened(frames, tmp_path, (0, 1), below, said.append, labeler=lab)
    assert sum("atoms)" in s for s in said) == 3 and said[-1].endswith("3 checked so far")  # resumed, none again


def test_a_frame_read_back_from_a_written_set_has_the_key_of_the_frame_the_build_made(tmp_path):
    from lam_lab.data import Dataset
    from lam_lab.data.io import load_source
    from lam_lab.data.io.lamh5 import write_lamh5
    from lam_lab.datasets.closed_shell import geometry_key

    rng = np.random.default_rng(0)
    made = [Frame(numbers=[8, 1, 1], positions=rng.normal(size=(3, 3)) * 1.3,  # float64, as the build makes them
                  info={"charge": 0}) for _ in range(20)]
    write_lamh5(Dataset(made, "t"), tmp_path / "t.lamh5")
    back = load_source(tmp_path / "t.lamh5")  # the shipped file keeps float32 positions
    assert [geometry_key(f) for f in back] == [geometry_key(f) for f in made]
    assert len({geometry_key(f) for f in made}) == 20


def test_a_check_whose_scf_fails_is_kept_as_failed_never_retried_and_its_frame_keeps_the_rks_label(tmp_path):
    frames = [_h2(2.0, "train")]
    frames[0].labels["dft"] = get_labeler("dft", basis="sto-3g").compute(frames[0])
    path, said = tmp_path / "checks.jsonl.gz", []
    failing = get_labeler("dft", basis="sto-3g", max_cycle=1)
    rows = check(frames, path, labeler=failing, say=said.append)
    assert rows[0]["stable"] is None and "converge" in rows[0]["failed"] and "FAILED" in said[0]
    assert check(frames, path, labeler=get_labeler("dft", basis="sto-3g"), say=said.append) == rows and len(said) == 1
    out = with_lowest_solution(frames, read_checks(path), "dft", np.array([0.5]))
    assert out[0].info["closed_shell"] == "check-failed"
    assert out[0].labels["dft"] is frames[0].labels["dft"]
