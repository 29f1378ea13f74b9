"""The descriptor protocol (lam_lab.nn.descriptor): registry, options as arguments, input statistics, freeze
levels, type extension; resolve_head; the verbs ll.train / ll.finetune / ll.distill stay functions."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torch import nn

from lam_lab.models import build_model, load, save
from lam_lab.nn.batch import collate
from lam_lab.nn.descriptor import Descriptor, descriptor_class, descriptor_kinds, register_descriptor
from lam_lab.nn.env_matrix import environment
from lam_lab.nn.type_embedding import TypeEmbedding
from lam_lab.potential import ModelConfig, resolve_head
from lam_lab.transfer import extend_type_map, freeze_descriptor, train_new_types
from test_model_physics import TYPE_MAP, ethanol, periodic, tiny


@register_descriptor("radial-sum-test")
class RadialSum(Descriptor):
    """A minimal new kind: D_i = concat(f⁰_i, (1/N^m) Σ_j w_ij tanh(W s_ij)) over the repinit cutoff."""

    def __init__(self, config: ModelConfig, n_types: int, dtype=None):
        super().__init__()
        self.ranges = [(config.repinit_rcut_smth, config.repinit_rcut)]
        self.sels = [config.repinit_sel]
        self.sel = config.repinit_sel
        self.type_embedding = TypeEmbedding(n_types, config.tebd_dim, dtype=dtype)
        self.radial = nn.Linear(1, 4, dtype=dtype)
        self.register_buffer("n_norm", torch.tensor(float(self.sel), dtype=dtype))
        self.out_dim = config.tebd_dim + 4
        self.init_input_stats(n_types, dtype)

    def forward(self, types, rij, masks, indices, exact_hessian=True):
        env = environment(rij[0], masks[0], *self.ranges[0], inv_scale=self.inverse_scale(types)[0])
        d = (env.w[..., None] * torch.tanh(self.radial(env.s[..., None]))).sum(1) / self.n_norm
        return torch.cat([self.type_embedding(types), d], dim=-1)

    def neighbor_norm_blocks(self):
        return [[self]]


def test_registry_knows_the_built_in_kinds_and_refuses_others():
    assert {"dpa2", "student"} <= set(descriptor_kinds())
    assert descriptor_class("dpa2").kind == "dpa2" and descriptor_class("student").kind == "student"
    with pytest.raises(ValueError, match="kind must be one of"):
        ModelConfig(kind="dpa3")
    with pytest.raises(TypeError, match="must subclass"):
        register_descriptor("x")(nn.Module)


def test_a_registered_descriptor_plugs_into_the_model(tmp_path):
    model = build_model("dpa2-small", TYPE_MAP, kind="radial-sum-test", dtype="float64", tebd_dim=4,
                        repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48, fitting_neuron=(8,))
    assert isinstance(model.descriptor, RadialSum) and model.cutoffs() == [(4.0, 48)]
    model.fit_input_stats([ethanol(1), periodic(2)])
    assert model.descriptor.stats_fitted and 1.0 <= float(model.descriptor.n_norm) < 48
    batch = collate([model.prepare(f) for f in (ethanol(3), periodic(4))])
    out = model(batch, virial=True)
    assert torch.isfinite(out.forces).all() and out.forces.abs().max() > 0
    save(model, tmp_path / "m.pt")
    again = load(tmp_path / "m.pt")
    torch.testing.assert_close(again(batch).forces, out.forces)


def test_forward_options_are_arguments_not_module_state():
    """Potential.forward passes exact_hessian down; no module carries it, so threads cannot see each other's."""
    model = tiny("student")
    batch = collate([model.prepare(f) for f in (ethanol(3), periodic(5))])
    ref = model(batch, virial=True).forces.detach()
    assert not any(hasattr(m, "exact_hessian") for m in model.modules())
    results, errors = [], []

    def run(exact: bool) -> None:
        try:
            for _ in range(3):
                out = model(batch, create_graph=True, exact_hessian=exact)
                grad = torch.autograd.grad((out.forces ** 2).sum(), model.descriptor.two_body.coef)[0]
                results.append((out.forces.detach(), grad))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(exact,)) for exact in (True, False, True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    for forces, grad in results:
        torch.testing.assert_close(forces, ref, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(grad, results[0][1], rtol=1e-9, atol=1e-12)


def test_input_stats_set_and_kept_on_type_extension():
    model = tiny("dpa2")
    d = model.descriptor
    d.set_input_stats(np.full((2, 3), 0.5), np.array([100.0, 2.0]), floor=16.0)
    assert d.stats_fitted and torch.all(d.env_scale == 0.5)
    assert float(d.repinit.n_norm) == 48.0  # clipped to sel
    assert all(float(layer.n_norm) == 16.0 for layer in d.layers)  # the floor
    grown = extend_type_map(model, ["N"], [ethanol(2)])
    torch.testing.assert_close(grown.descriptor.env_scale[:, :3], d.env_scale)
    assert float(grown.descriptor.repinit.n_norm) == 48.0


def test_freeze_levels():
    dpa2 = tiny("dpa2")
    assert dpa2.descriptor.freeze_levels() == 2
    level0 = freeze_descriptor(tiny("dpa2"), 0)
    assert any(n.startswith("descriptor.repinit.") for n in level0)
    assert not any(n.startswith(("descriptor.layers", "descriptor.proj_")) for n in level0)
    names = freeze_descriptor(dpa2, 1)
    assert any(n.startswith("descriptor.layers.0.") for n in names)
    assert not any(n.startswith("descriptor.layers.1.") for n in names)
    with pytest.raises(ValueError, match="2 repformer layers"):
        freeze_descriptor(tiny("dpa2"), 3)
    student = tiny("student")
    assert student.descriptor.freeze_levels() == 0
    assert set(freeze_descriptor(student, 1)) == {f"descriptor.{n}" for n, _ in student.descriptor.named_parameters()}


def test_new_types_train_alone_under_a_frozen_embedding():
    model = extend_type_map(tiny("dpa2"), ["N"])
    assert train_new_types(model, 3) == []  # nothing frozen: nothing to mask
    freeze_descriptor(model, "descriptor")
    hooks = train_new_types(model, 3)
    weight = model.descriptor.type_weight()
    assert len(hooks) == 1 and weight.shape == (4, 4)
    (grad,) = torch.autograd.grad((weight ** 2).sum(), weight)
    assert torch.all(grad[:, :3] == 0) and torch.any(grad[:, 3] != 0)


def test_resolve_head():
    one = build_model("student", TYPE_MAP)
    two = build_model("student", TYPE_MAP, heads=("a", "b"))
    assert resolve_head(one, None) == 0 and resolve_head(two, "b") == 1
    with pytest.raises(ValueError, match="several heads"):
        resolve_head(two, None)
    with pytest.raises(KeyError, match="heads are"):
        resolve_head(two, "c")


def test_verbs_stay_functions_after_their_modules_are_imported():
    code = ("import inspect\n"
            "from lam_lab.train.checkpoint import load_checkpoint\n"
            "import lam_lab.finetune, lam_lab.distill.select, lam_lab.train.config\n"
            "import lam_lab as ll\n"
            "from lam_lab.train.trainer import train\n"
            "from lam_lab.distill.loop import distill\n"
            "assert ll.train is train and ll.distill is distill, (ll.train, ll.distill)\n"
            "assert inspect.isfunction(ll.finetune) and ll.finetune.__module__ == 'lam_lab.finetune'\n"
            "import lam_lab.train\n"
            "assert inspect.isfunction(ll.train)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
