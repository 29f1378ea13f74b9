"""rxn-xtb: only verified GFN2-xTB saddles are tagged ``ts``, unverified paths keep their data untagged, held-out
reactions stay out of pre-training, and the quick build runs both kinds of reaction."""

from __future__ import annotations

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny xTB jobs: threads only fight each other

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lam_lab import datasets  # noqa: E402
from lam_lab.datasets import rxn_xtb  # noqa: E402
from lam_lab.datasets.reactions import REACTIONS  # noqa: E402
from lam_lab.datasets.rxn_dft import TEST_REACTIONS  # noqa: E402

needs_built = pytest.mark.skipif("rxn-xtb" not in datasets.available(), reason="rxn-xtb not built")


@pytest.fixture(scope="module")
def ds():
    return datasets.load("rxn-xtb")


def _shipped_ts() -> dict:
    path = datasets.FILES / "transition-states.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@needs_built
def test_every_ts_frame_is_a_verified_xtb_saddle(ds):
    doc = _shipped_ts()
    ts = [f for f in ds if f.info.get("role") == "ts"]
    assert ts, "no ts frame at all"
    for f in ts:
        name = f.info["reaction"]
        entry = doc.get(name, {}).get("xtb", {})
        assert entry.get("status") == "verified", f"{name}: tagged ts but its xTB TS is {entry.get('status')!r}"
        assert f.info["ts_status"] == "verified" and f.info["source"] == "xtb-stationary"
        np.testing.assert_array_equal(f.numbers, entry["ts"]["numbers"])
        np.testing.assert_allclose(f.positions, entry["ts"]["positions"], atol=1e-4, err_msg=name)
        assert f.labels["gfn2-xtb"].energy == pytest.approx(entry["ts"]["energy"], abs=1e-3)
    names = [f.info["reaction"] for f in ts]
    assert len(names) == len(set(names)), "one ts frame per reaction"
    sampled = {r.name for r in REACTIONS}  # the DFT-only reactions have saddles in the file but no rxn-xtb frames
    verified = {n for n, e in doc.items() if e.get("xtb", {}).get("status") == "verified" and n in sampled}
    assert set(names) == verified, "each verified xTB saddle of the reactions rxn-xtb samples is in the set"


@needs_built
def test_reactions_without_a_verified_ts_keep_their_path_untagged(ds):
    names = {f.info.get("reaction") for f in ds} - {None}
    tagged = {f.info["reaction"] for f in ds if f.info.get("role") == "ts"}
    untagged = names - tagged
    assert {"claisen", "formamide", "h-shift-15", "ester-pyrolysis"} <= untagged
    for name in untagged:
        frames = [f for f in ds if f.info.get("reaction") == name]
        assert {f.info["source"] for f in frames} <= {"neb", "md"}, name
        assert all(f.info["ts_status"] != "verified" for f in frames), name
        top = [f for f in frames if f.info["role"] == "path-max"]
        assert len(top) == 1 and "not a transition state" in top[0].info["note"], name
    # every built-in reaction is in the set or named in the card with the reason it was left out
    notes = ds.provenance.notes
    for r in REACTIONS:
        assert r.name in names or f"- {r.name}: 0 frames" in notes and "left out" in notes, r.name


@needs_built
def test_frames_say_reaction_source_temperature_role_split(ds):
    for f in ds[::7]:
        i = f.info
        assert {"system", "source", "temperature", "role", "split"} <= set(i), i
        assert ("reaction" in i) != ("molecule" in i), i
        assert i["temperature"] >= 0 and i["split"] in ("train", "val", "test")
        if i["source"] in ("xtb-stationary", "irc", "neb"):
            assert i["temperature"] == 0.0
    per = {}
    for f in ds:
        per[f.info.get("reaction")] = per.get(f.info.get("reaction"), 0) + 1
    assert all(250 <= n <= 300 for r, n in per.items() if r is not None), per
    assert per[None] >= 1500  # small-molecule MD


@needs_built
def test_ts_centred_reactions_sample_near_the_saddle(ds):
    near = rxn_xtb.near_ts_fraction(list(ds), "gfn2-xtb")
    assert len(near) >= 16
    assert min(near.values()) >= rxn_xtb.TS_FRACTION - 0.01, near


@needs_built
def test_held_out_reactions_are_the_test_split_and_stay_out_of_pretraining(ds):
    from lam_lab.pretrained.recipe import load_recipe

    test = {f.info.get("reaction") for f in ds if f.info["split"] == "test"}
    assert test == set(TEST_REACTIONS)
    spec = load_recipe("lam-chon-small").tasks["rxn-xtb"]
    assert set(TEST_REACTIONS) <= set(spec.exclude["reaction"])


def test_path_end_check_tells_the_reaction_from_another_structure():
    from lam_lab.data.frame import Frame
    from lam_lab.datasets.reaction_paths import ends_mismatch
    from lam_lab.datasets.reactions import get_reaction
    from lam_lab.sampling.molecules import mapped_pair

    rx = get_reaction("formamide")
    ends = mapped_pair(rx.reactant, rx.product, rx.name, seed=0, n_conformers=2)

    def band(r, p):
        return [Frame(a.numbers, a.positions, None, [False] * 3, {}, {"source": "neb", "role": role})
                for role, a in (("reactant", r), ("product", p))]

    assert ends_mismatch(rx, band(ends.reactant, ends.product)) is None
    msg = ends_mismatch(rx, band(ends.product, ends.reactant))
    assert "NEB reactant is not the reactant" in msg and "NEB product is not the product" in msg


def test_a_reaction_whose_path_fails_to_compute_is_left_out_with_the_reason(tmp_path, monkeypatch):
    from ase.calculators.calculator import CalculationFailed

    from lam_lab.datasets._stages import BuildContext
    from lam_lab.datasets.reactions import get_reaction

    def scf_fails(*args, **kwargs):  # what tblite raises on a band image it cannot converge
        raise CalculationFailed("SCF not converged in 250 cycles")

    monkeypatch.setattr(rxn_xtb, "sample_reaction", scf_fails)
    ctx = BuildContext("rxn-xtb", tmp_path, 1, True, 0, False)
    frames, why = rxn_xtb.path_sampled(ctx, get_reaction("formic-acid-dimer"), "failed: SCF")
    assert frames == [] and "left out" in why and "SCF not converged" in why


def test_quick_build_tags_only_the_verified_saddle(tmp_path):
    built = datasets.build("rxn-xtb", cache_dir=tmp_path / "cache", quick=True, progress=False)
    by = {r: [f for f in built if f.info.get("reaction") == r] for r in ("hcn-hnc", "formamide")}
    assert [f.info["role"] for f in by["hcn-hnc"]].count("ts") == 1
    assert "ts" not in {f.info["role"] for f in by["formamide"]}
    assert [f.info["role"] for f in by["formamide"]].count("path-max") == 1
    assert {f.info["molecule"] for f in built if "molecule" in f.info} and "gfn2-xtb" in built.provenance.labels
    assert "hcn-hnc: 12 frames; verified" in built.provenance.notes


@pytest.mark.parametrize("which, n", [("MORE_REACTIONS", 18), ("FOURTH_SET", 15), ("KIN_SET", 6)])
def test_the_transfer_sets_ship_verified_xtb_saddles_and_get_no_extra_rounds(which, n):
    from lam_lab.datasets import reactions
    from lam_lab.datasets.rxn_dft import FIRST_SELECTION_ONLY
    from lam_lab.md.reactive import builtin_ts

    doc = _shipped_ts()
    names = {r.name for r in getattr(reactions, which)}
    assert names <= FIRST_SELECTION_ONLY and len(names) == n
    assert not names & {r.name for r in reactions.REACTIONS}  # rxn-xtb was built without them
    for r in getattr(reactions, which):
        assert doc[r.name]["xtb"]["status"] == "verified", r.name
        assert builtin_ts(r.name, "xtb").method == "verified saddle, gfn2-xtb"


def test_every_builtin_reaction_has_a_unique_name_and_changes_bonds():
    from lam_lab.datasets.reactions import ALL_REACTIONS, DFT_ONLY_REACTIONS, get_reaction
    from lam_lab.sampling.molecules import mapped_bond_graphs

    names = [r.name for r in ALL_REACTIONS]
    assert len(names) == len(set(names))
    assert not {r.name for r in DFT_ONLY_REACTIONS} & {r.name for r in REACTIONS}  # rxn-xtb was built without them
    for r in ALL_REACTIONS:
        before, after = mapped_bond_graphs(r.reactant, r.product)
        assert before != after, r.name
        assert get_reaction(r.name) is r
