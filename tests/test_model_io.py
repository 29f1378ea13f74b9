"""Model presets, heads, and one-file save/load (atomic, weights_only, clear errors)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase.build import molecule

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame
from lam_lab.models import PRESETS, build_model, load, save
from lam_lab.nn.batch import collate
from lam_lab.potential import ModelConfig

TINY = dict(tebd_dim=4, repinit_sel=24, repinit_neuron=(4, 8), repinit_axis=3, repformer_sel=12, repformer_layers=2,
            g1_dim=8, g2_dim=6, repformer_axis=2, g2_attn=True, g2_attn_heads=2, g2_attn_hidden=4, loc_attn=True,
            loc_attn_hidden=4, loc_attn_heads=2, g1g1=True, fitting_neuron=(8, 8))


def water_batch(model):
    atoms = molecule("H2O")
    atoms.rattle(0.02, seed=1)
    return collate([model.prepare(Frame.from_atoms(atoms))])


def outputs(model, head=None):
    out = model(water_batch(model), head=head)
    return out.energy.detach().numpy(), out.forces.detach().numpy()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_run(preset):
    model = build_model(preset, ["H", "O"], dtype="float64")
    assert model.config.dtype == "float64" and model.dtype == torch.float64
    e, f = outputs(model)
    assert np.isfinite(e).all() and f.shape == (3, 3)


def test_presets_mirror_deepmd_small():
    c = PRESETS["dpa2-small"]
    assert (c.repinit_rcut, c.repinit_rcut_smth, c.repinit_sel, c.tebd_dim, c.repinit_neuron, c.repinit_axis) == \
        (6.0, 0.5, 120, 8, (25, 50, 100), 12)
    assert (c.repformer_rcut, c.repformer_rcut_smth, c.repformer_sel, c.repformer_layers, c.g1_dim, c.g2_dim,
            c.repformer_axis, c.g2_attn) == (4.0, 3.5, 48, 3, 128, 32, 4, False)
    assert c.fitting_neuron == (240, 240, 240) and c.dtype == "float32"
    assert PRESETS["dpa2-medium"].repformer_layers == 6 and PRESETS["dpa2-medium"].g2_attn
    assert PRESETS["dpa2-paper"].repformer_layers == 12
    assert PRESETS["student"].kind == "student"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="no-such"):
        build_model("no-such", ["H"])
    with pytest.raises(ValueError, match="repformer_layer"):
        build_model("dpa2-small", ["H"], repformer_layer=2)
    with pytest.raises(ValueError, match="rcut_smth"):
        build_model("dpa2-small", ["H"], repformer_rcut_smth=5.0)
    with pytest.raises(ValueError, match="unknown model config field"):
        ModelConfig.from_dict({"kind": "dpa2", "bogus": 1})


def test_default_dtype_is_float32_with_float64_energies():
    model = build_model("dpa2-small", ["H", "O"], **{k: v for k, v in TINY.items()})
    out = model(water_batch(model))
    assert model.dtype == torch.float32 and out.forces.dtype == torch.float32
    assert out.energy.dtype == torch.float64  # totals keep meV resolution


def test_heads_are_independent_and_copyable():
    model = build_model("dpa2-small", ["H", "O"], heads=("a", "b"), dtype="float64", **TINY)
    with pytest.raises(ValueError, match="several heads"):
        model(water_batch(model))
    with pytest.raises(KeyError, match="zzz"):
        model(water_batch(model), head="zzz")
    ea, _ = outputs(model, "a")
    eb, _ = outputs(model, "b")
    assert not np.allclose(ea, eb)
    model.energy_bias["a"].fill_(1.5)
    model.add_head("c", copy_from="a")
    np.testing.assert_allclose(outputs(model, "c")[0], outputs(model, "a")[0])
    assert model.heads == ["a", "b", "c"]
    with pytest.raises(ValueError, match="exists"):
        model.add_head("a")


def test_save_load_roundtrip(tmp_path):
    model = build_model("dpa2-small", ["H", "C", "O"], heads=("x", "y"), dtype="float64", **TINY)
    model.fit_input_stats([Frame.from_atoms(molecule("CH3CH2OH"))])
    model.energy_bias["y"].copy_(torch.tensor([-13.6, -1029.0, -2041.5], dtype=torch.float64))
    path = tmp_path / "sub" / "m.pt"
    save(model, path, extra={"task": "test", "rmse": np.float64(0.1), "curve": np.arange(3)})
    assert sorted(os.listdir(path.parent)) == ["m.pt"]  # the temp file is gone
    loaded = load(path)
    assert loaded.config == model.config and loaded.type_map == model.type_map and loaded.heads == model.heads
    for head in model.heads:
        e0, f0 = outputs(model, head)
        e1, f1 = outputs(loaded, head)
        np.testing.assert_array_equal(e0, e1)
        np.testing.assert_array_equal(f0, f1)
    np.testing.assert_array_equal(loaded.energy_bias["y"].numpy(), [-13.6, -1029.0, -2041.5])
    assert loaded.metadata["extra"] == {"task": "test", "rmse": 0.1, "curve": [0, 1, 2]}
    assert loaded.metadata["provenance"]["torch"] == torch.__version__
    torch.load(path, weights_only=True)  # readable without unpickling code


def test_student_roundtrip(tmp_path):
    model = build_model("student", ["H", "O"], dtype="float64", repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    save(model, tmp_path / "s.pt")
    np.testing.assert_array_equal(outputs(load(tmp_path / "s.pt"))[1], outputs(model)[1])


def test_student_neighbor_norm_is_fitted_and_old_files_keep_sel(tmp_path):
    from ase.build import molecule

    model = build_model("student", ["H", "C", "O"], repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    model.fit_input_stats([molecule("CH3CH2OH")])
    n_norm = float(model.descriptor.two_body.n_norm)
    assert 1.0 < n_norm < 9.0  # ethanol: 8 neighbours per atom within 5 Å, not sel = 80
    save(model, tmp_path / "s.pt")
    assert float(load(tmp_path / "s.pt").descriptor.two_body.n_norm) == n_norm
    payload = torch.load(tmp_path / "s.pt", weights_only=True)
    del payload["state_dict"]["descriptor.two_body.n_norm"]  # a student file from before N^m was fitted
    del payload["checksum"]  # (and before checksums)
    torch.save(payload, tmp_path / "old.pt")
    assert float(load(tmp_path / "old.pt").descriptor.two_body.n_norm) == 80.0


def test_overwrite_is_atomic(tmp_path):
    path = tmp_path / "m.pt"
    model = build_model("student", ["H", "O"], repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    save(model, path)
    save(build_model("student", ["H", "O"], seed=3, repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,)), path)
    assert load(path).config.seed == 3 and sorted(os.listdir(tmp_path)) == ["m.pt"]


def test_corrupt_and_foreign_files_name_the_file(tmp_path):
    model = build_model("student", ["H", "O"], repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    good = tmp_path / "good.pt"
    save(model, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: 300])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a model" * 10)
    for bad in (truncated, garbage):
        with pytest.raises(DataError, match="cannot read model file") as err:
            load(bad)
        assert str(bad) in str(err.value)
    foreign = tmp_path / "state_dict.pt"
    torch.save(model.state_dict(), foreign)
    with pytest.raises(DataError, match="not a lam_lab model") as err:
        load(foreign)
    assert str(foreign) in str(err.value)
    payload = torch.load(good, weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    del payload["checksum"]  # a structurally broken file that no checksum vouches for
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(DataError, match="damaged or inconsistent"):
        load(broken)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load(tmp_path / "missing.pt")


def test_unplain_extra_is_refused(tmp_path):
    model = build_model("student", ["H"], repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    with pytest.raises(TypeError, match=r"extra\['obj'\]"):
        save(model, tmp_path / "m.pt", extra={"obj": object()})
    assert not os.listdir(tmp_path)


def test_files_from_before_the_model_options_load_as_the_paper():
    from lam_lab.potential import ModelConfig

    old = ModelConfig().to_dict()
    del old["neighbor_norm"], old["radial_basis"]
    cfg = ModelConfig.from_dict(old)
    assert cfg.neighbor_norm == "sel" and cfg.radial_basis == 0
    assert ModelConfig().neighbor_norm == "data" and ModelConfig().radial_basis == 16
