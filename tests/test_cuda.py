"""CUDA: the same model gives the CPU's energies, forces and virials on the GPU; training, Δ and MD run there.

Skipped without a CUDA device (CI has none); on a GPU machine: ``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import molecule

import lam_lab as ll
from conftest import build_mixed_dataset, tiny_config
from lam_lab.evaluation import predict
from lam_lab.train.config import TrainConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def mixed():
    return build_mixed_dataset()


def test_energy_forces_virial_on_gpu_equal_cpu(mixed):
    model = ll.build_model(tiny_config(dtype="float64"), mixed.elements, seed=0)
    cpu = predict(model, mixed, baseline=None, virial=True)
    gpu = predict(copy.deepcopy(model).to("cuda"), mixed, baseline=None, virial=True)
    np.testing.assert_allclose(gpu.energy, cpu.energy, rtol=0, atol=1e-8)
    for a, b in zip(gpu.forces, cpu.forces):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    for a, b in zip(gpu.virial, cpu.virial):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


def test_student_on_gpu_equals_cpu(mixed):
    # the distillation student (compressed B-spline embedding) has its own kernels: module constants must follow
    student = ll.build_model("student", mixed.elements, dtype="float64")
    cpu = predict(student, mixed, baseline=None)
    gpu = predict(copy.deepcopy(student).to("cuda"), mixed, baseline=None)
    np.testing.assert_allclose(gpu.energy, cpu.energy, rtol=0, atol=1e-8)
    for a, b in zip(gpu.forces, cpu.forces):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


def test_training_on_gpu_lowers_the_loss_and_saves_a_cpu_loadable_model(mixed, tmp_path):
    model = ll.build_model(tiny_config(), mixed.elements, seed=0)
    res = ll.train(model, mixed.with_label("emt"), steps=60, config=TrainConfig(device="cuda", lr=3e-3, log_every=1),
                   out_dir=tmp_path / "run", progress=False)
    losses = [h["loss"] for h in res.history if h["kind"] == "step"]
    assert len(losses) >= 50 and np.isfinite(losses).all() and np.mean(losses[-10:]) < np.mean(losses[:10])
    assert next(res.model.parameters()).is_cuda
    back = ll.load(tmp_path / "run" / "model.pt", map_location="cpu")
    e = predict(back, mixed[:3], baseline=None).energy
    assert np.isfinite(e).all()


def test_delta_finetune_on_gpu():
    ds = ll.datasets.load("rxn-dft")
    train = ds.where(split="train").subset(16, 0)
    ft = ll.finetune(train, pretrained=None, mode="delta", label="wb97x/6-31g*", baseline="gfn2-xtb",
                     preset=tiny_config(), steps=20, config=TrainConfig(device="cuda", batch_atoms=64),
                     out_dir=None, progress=False)
    pred = predict(ft.model, train[:4])  # the stored GFN2-xTB labels added back
    assert np.isfinite(pred.energy).all() and next(ft.model.parameters()).is_cuda


def test_calculator_and_md_on_gpu():
    from lam_lab.md import LAMCalculator
    from lam_lab.md.runner import run_md

    atoms = molecule("CH3CH2OH")
    model = ll.build_model(tiny_config(dtype="float64"), ["H", "C", "O"], seed=0)
    atoms.calc = LAMCalculator(copy.deepcopy(model), device="cuda")
    e_gpu, f_gpu = atoms.get_potential_energy(), atoms.get_forces()
    ref = atoms.copy()
    ref.calc = LAMCalculator(model, device="cpu")
    assert e_gpu == pytest.approx(ref.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(f_gpu, ref.get_forces(), atol=1e-8)
    res = run_md(atoms, LAMCalculator(copy.deepcopy(model), device="cuda"), steps=20, temperature=300.0)
    assert len(res.frames) >= 2 and np.isfinite(res.frames[-1].get_positions()).all()
