"""Physics of the DPA-2 model and the student: symmetry, conservative forces, virial, smoothness, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.models import build_model
from lam_lab.nn.batch import collate

TYPE_MAP = ["H", "C", "O"]
# tiny float64 models with every term of the paper switched on (fast, but exercise all equations)
DPA2_TINY = dict(
    dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48, repinit_neuron=(4, 8),
    repinit_axis=3, repformer_rcut=3.0, repformer_rcut_smth=2.0, repformer_sel=24, repformer_layers=2, g1_dim=8,
    g2_dim=6, repformer_axis=2, loc_attn=True, loc_attn_heads=2, loc_attn_hidden=4, g1g1=True, g2_attn=True,
    g2_attn_heads=2, g2_attn_hidden=4, fitting_neuron=(8, 8), seed=1,
)
STUDENT_TINY = dict(dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48,
                    repinit_neuron=(8,), repinit_axis=3, student_basis=10, fitting_neuron=(8, 8), seed=1)
STUDENT_MLP_TINY = dict(STUDENT_TINY, student_embedding="mlp", repinit_neuron=(4, 8))
KINDS = {
    "dpa2": ("dpa2-small", DPA2_TINY),
    "student": ("student", STUDENT_TINY),
    "student-mlp": ("student", STUDENT_MLP_TINY),
}


def tiny(kind: str, stats_frames=None, **overrides):
    preset, kw = KINDS[kind]
    model = build_model(preset, TYPE_MAP, **{**kw, **overrides})
    model.fit_input_stats(stats_frames or [ethanol(7), periodic(7)])
    return model


def ethanol(seed: int = 0) -> Frame:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=seed)
    return Frame.from_atoms(atoms)


def periodic(seed: int = 0, n: int = 10) -> Frame:
    """Random H/C/O atoms (≥ 0.9 Å apart) in a small triclinic box: many periodic images within the cutoff."""
    rng = np.random.default_rng(seed)
    cell = np.array([[4.6, 0.0, 0.0], [0.6, 4.8, 0.0], [0.3, 0.4, 5.0]])
    frac = []
    while len(frac) < n:
        cand = rng.random(3)
        d = [np.linalg.norm(((cand - f + 0.5) % 1.0 - 0.5) @ cell) for f in frac]
        if all(x > 0.9 for x in d):
            frac.append(cand)
    numbers = rng.choice([1, 6, 8], size=n)
    return Frame(numbers, np.array(frac) @ cell, cell, [True, True, True])


def evaluate(model, frames, virial=False):
    """(energies [B], forces list, virials [B,3,3]) as float64 numpy."""
    out = model(collate([model.prepare(f) for f in frames]), virial=virial)
    n = np.cumsum([0] + [len(f) for f in frames])
    forces = out.forces.detach().numpy()
    return (out.energy.detach().numpy(), [forces[a:b] for a, b in zip(n[:-1], n[1:])],
            None if out.virial is None else out.virial.detach().numpy())


def moved(frame: Frame, positions=None, cell=None, numbers=None) -> Frame:
    return Frame(frame.numbers if numbers is None else numbers, frame.positions if positions is None else positions,
                 frame.cell if cell is None else cell, frame.pbc)


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture(params=list(KINDS))
def model(request):
    return tiny(request.param)


def test_no_neighbors_dropped(model):
    for f in (ethanol(), periodic()):
        assert all(nl.n_dropped == 0 for nl in model.prepare(f).neighbors)


def test_rotation_translation_invariance(model):
    for frame in (ethanol(), periodic()):
        R = rotation(3)
        shift = np.array([0.7, -1.3, 2.1])
        rot = moved(frame, frame.positions @ R.T + shift, frame.cell @ R.T)
        (e0, e1), (f0, f1), v = evaluate(model, [frame, rot], virial=True)
        assert abs(e0 - e1) < 1e-10 * max(1.0, abs(e0))
        np.testing.assert_allclose(f1, f0 @ R.T, atol=1e-10)
        np.testing.assert_allclose(v[1], R @ v[0] @ R.T, atol=1e-10)


def test_permutation_invariance(model):
    for frame in (ethanol(), periodic()):
        perm = np.random.default_rng(5).permutation(len(frame))
        shuffled = moved(frame, frame.positions[perm], numbers=frame.numbers[perm])
        (e0, e1), (f0, f1), _ = evaluate(model, [frame, shuffled])
        assert abs(e0 - e1) < 1e-10 * max(1.0, abs(e0))
        np.testing.assert_allclose(f1, f0[perm], atol=1e-10)


def test_forces_match_finite_differences(model):
    h = 1e-5
    for frame in (ethanol(), periodic()):
        _, (force,), _ = evaluate(model, [frame])
        shifted = []
        for i in range(len(frame)):
            for a in range(3):
                for sign in (1, -1):
                    pos = frame.positions.copy()
                    pos[i, a] += sign * h
                    shifted.append(moved(frame, pos))
        e, _, _ = evaluate(model, shifted)
        fd = -(e[0::2] - e[1::2]).reshape(len(frame), 3) / (2 * h)
        np.testing.assert_allclose(force, fd, atol=1e-7)
        assert np.abs(force).max() > 1e-4  # the check is not vacuous


def test_virial_matches_finite_strain(model):
    h = 1e-5
    frame = periodic()
    _, _, (vir,) = evaluate(model, [frame], virial=True)
    strained = []
    for a in range(3):
        for b in range(3):
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[a, b] += sign * h / 2
                eps[b, a] += sign * h / 2
                strained.append(moved(frame, frame.positions @ (np.eye(3) + eps), frame.cell @ (np.eye(3) + eps)))
    e, _, _ = evaluate(model, strained)
    fd = -(e[0::2] - e[1::2]).reshape(3, 3) / (2 * h)
    np.testing.assert_allclose(vir, fd, atol=1e-7)
    np.testing.assert_allclose(vir, vir.T, atol=1e-12)
    _, _, (vmol,) = evaluate(model, [ethanol()], virial=True)
    assert np.all(vmol == 0)  # contract: zeros for non-periodic frames


def _scan_radii(model, kind):
    c = model.config
    radii = [c.repinit_rcut, c.repinit_rcut_smth]
    if kind == "dpa2":
        radii += [c.repformer_rcut, c.repformer_rcut_smth]
    if kind == "student":
        radii.append(4 * c.repinit_rcut / (c.student_basis - 3))  # a B-spline knot
    return radii


@pytest.mark.parametrize("kind", list(KINDS))
def test_energy_and_forces_smooth_across_cutoffs(kind):
    """Move an H atom radially through each cutoff and switch start: E and F have no jump (E is C²)."""
    direction = np.array([np.cos(0.4), np.sin(0.4), 0.0])
    stats = [Frame([6, 8, 1], [[0, 0, 0], [1.25, 0, 0], 1.5 * direction])]
    model = tiny(kind, stats, repinit_sel=6, repformer_sel=4)  # small N^m: the 3 atoms weigh more
    step = 1e-4
    for radius in _scan_radii(model, kind):
        rs = radius + step * np.arange(-50, 51)
        frames = [Frame([6, 8, 1], [[0, 0, 0], [1.25, 0, 0], r * direction]) for r in rs]
        e, forces, _ = evaluate(model, frames)
        f_h = np.array([f[2] for f in forces])
        slope_fd = np.diff(e) / step
        slope_an = -0.5 * (f_h[1:] + f_h[:-1]) @ direction
        assert np.abs(slope_fd - slope_an).max() < 1e-6, f"energy jumps near r = {radius} Å"
        f_all = np.stack(forces)
        second = f_all[2:] - 2 * f_all[1:-1] + f_all[:-2]
        assert np.abs(second).max() < 1e-6, f"forces jump near r = {radius} Å"
    # the moving atom does interact (otherwise the scan would test nothing)
    e_in, _, _ = evaluate(model, [Frame([6, 8, 1], [[0, 0, 0], [1.25, 0, 0], 1.5 * direction])])
    e_out, _, _ = evaluate(model, [Frame([6, 8, 1], [[0, 0, 0], [1.25, 0, 0], 9.0 * direction])])
    assert abs(e_in[0] - e_out[0]) > 1e-4


def test_batch_equals_frames_separately(model):
    frames = [ethanol(1), periodic(2), Frame.from_atoms(molecule("H2O")), periodic(4, n=7)]
    e, f, v = evaluate(model, frames, virial=True)
    for k, frame in enumerate(frames):
        e1, (f1,), v1 = evaluate(model, [frame], virial=True)
        assert abs(e[k] - e1[0]) < 1e-10 * max(1.0, abs(e1[0]))
        np.testing.assert_allclose(f[k], f1, atol=1e-11)
        np.testing.assert_allclose(v[k], v1[0], atol=1e-11)


def test_supercell_is_extensive(model):
    unit = periodic(6, n=6)
    sc = Frame.from_atoms(unit.to_atoms().repeat((2, 1, 2)))
    (e_unit,), (f_unit,), (v_unit,) = evaluate(model, [unit], virial=True)
    (e_sc,), (f_sc,), (v_sc,) = evaluate(model, [sc], virial=True)
    assert abs(e_sc - 4 * e_unit) < 1e-9 * max(1.0, abs(e_sc))
    np.testing.assert_allclose(f_sc, np.tile(f_unit, (4, 1)), atol=1e-10)
    np.testing.assert_allclose(v_sc, 4 * v_unit, atol=1e-9)


def test_energy_bias_solves_eq6():
    model = tiny("student")
    rng = np.random.default_rng(0)
    true = np.array([-13.6, -1030.0, -2040.0])
    frames, counts = [], []
    for _ in range(12):
        numbers = rng.choice([1, 6, 8], size=rng.integers(3, 9))
        frame = Frame(numbers, rng.normal(size=(len(numbers), 3)) * 3)
        c = np.array([(numbers == z).sum() for z in (1, 6, 8)])
        noise = rng.normal() * 0.01
        frame.labels["dft"] = Labels(energy=float(c @ true + noise))
        frames.append(frame)
        counts.append(c)
    bias = model.fit_energy_bias(frames, head="default", label="dft")
    expected, *_ = np.linalg.lstsq(np.array(counts, float), [f.labels["dft"].energy for f in frames], rcond=None)
    np.testing.assert_allclose(bias, expected, rtol=1e-12)
    np.testing.assert_allclose(bias, true, atol=0.05)
    np.testing.assert_allclose(model.energy_bias["default"].numpy(), bias)
    # the bias is the per-type offset of the atomic energies (Eq. 5)
    frame = ethanol()
    out = model(collate([model.prepare(frame)]), forces=False)
    model.fittings[0].energy_bias.zero_()
    out0 = model(collate([model.prepare(frame)]), forces=False)
    types = model.prepare(frame).types
    np.testing.assert_allclose((out.atomic_energy - out0.atomic_energy).detach().numpy(), bias[types], atol=1e-9)


def test_energy_bias_keeps_absent_types_and_uses_graphs():
    model = tiny("dpa2")
    model.fittings[0].energy_bias[1] = 7.0  # carbon: absent below, must be kept
    frames = []
    for n_h, n_o in [(2, 1), (4, 2), (2, 2), (0, 2)]:
        numbers = [1] * n_h + [8] * n_o
        f = Frame(numbers, np.arange(3 * len(numbers), dtype=float).reshape(-1, 3) * 1.1)
        f.labels["x"] = Labels(energy=-0.5 * n_h - 3.0 * n_o)
        frames.append(f)
    graphs = [model.prepare(f) for f in frames]
    bias = model.fit_energy_bias(graphs, head="default")
    np.testing.assert_allclose(bias, [-0.5, 7.0, -3.0], atol=1e-10)


def test_unknown_element_is_a_clear_error():
    model = tiny("dpa2")
    frame = Frame([6, 17, 1], [[0, 0, 0], [1.7, 0, 0], [-1.0, 0, 0]])
    with pytest.raises(DataError) as err:
        model.prepare(frame, index=3, source="set.xyz")
    assert err.value.field == "numbers" and err.value.frame == 3 and "Cl" in str(err.value) and "set.xyz" in str(err.value)
    frame.labels["dft"] = Labels(energy=-1.0)
    with pytest.raises(DataError, match="Cl"):
        model.fit_energy_bias([ethanol(), frame], head="default", label="dft")


def test_symmetrization_eq18_20_is_rotation_invariant():
    from lam_lab.nn.symmetrization import symm

    x = torch.randn(5, 9, 6, dtype=torch.float64)
    y = torch.randn(5, 9, 3, dtype=torch.float64)
    w = torch.rand(5, 9, dtype=torch.float64)
    R = torch.from_numpy(rotation(1))
    out = symm(x, y, w, n_max=9, axis=2)
    assert out.shape == (5, 12)
    np.testing.assert_allclose(symm(x, y @ R.T, w, 9, 2).numpy(), out.numpy(), atol=1e-13)


def test_force_loss_gradients_match_finite_differences(model):
    """create_graph=True: ∂(force loss)/∂θ is right (double backward through every op)."""
    batch = collate([model.prepare(f) for f in (ethanol(), periodic())])

    def loss():
        out = model(batch, virial=True, create_graph=True)
        return (out.forces ** 2).sum() + (out.virial ** 2).sum() + (out.energy ** 2).sum()

    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss(), params, allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    rng = np.random.default_rng(0)
    for k in rng.choice(len(params), size=4, replace=False):
        p, g = params[k], grads[k]
        idx = tuple(int(rng.integers(n)) for n in p.shape)
        h = 1e-6
        with torch.no_grad():
            p[idx] += h
        up = float(loss().detach())
        with torch.no_grad():
            p[idx] -= 2 * h
        down = float(loss().detach())
        with torch.no_grad():
            p[idx] += h
        assert abs((up - down) / (2 * h) - float(g[idx])) < 1e-5 * max(1.0, abs(float(g[idx])))


def test_input_stats_fitted_once_on_a_fresh_model():
    model = build_model("dpa2-small", TYPE_MAP, **DPA2_TINY)
    assert not model.descriptor.stats_fitted
    frames = [ethanol(k) for k in range(3)]
    for k, f in enumerate(frames):
        f.labels["dft"] = Labels(energy=-10.0 - k)
    model.fit_energy_bias(frames, head="default", label="dft")
    scale = model.descriptor.env_scale.clone()
    assert model.descriptor.stats_fitted and not torch.allclose(scale, torch.ones_like(scale))
    model.fit_energy_bias([periodic()] + frames[:1], head="default", label="dft")  # fine-tuning style: kept
    assert torch.equal(model.descriptor.env_scale, scale)


@pytest.mark.parametrize("kernel", ["auto", "0"])
def test_student_fast_pair_derivative_matches_autograd(kernel, monkeypatch):
    """The student's hand-written pair derivative (compiled kernel or PyTorch ops) gives autograd's forces,
    virial and (create_graph) second derivatives."""
    import shutil

    from lam_lab.nn import kernels

    monkeypatch.setenv("LAM_LAB_KERNELS", kernel)
    if kernel == "auto" and shutil.which("c++") and shutil.which("ninja"):
        assert kernels.pair_moments() is not None, "a compiler is here: the C++ kernel must build"
    model = tiny("student")
    batch = collate([model.prepare(f) for f in (ethanol(3), periodic(5))])
    two_body = model.descriptor.two_body
    results = []
    for fast in (True, False):
        two_body.use_fast = fast
        plain = model(batch, virial=True)  # first derivative only: the hand-written backward
        results.append((plain.forces.detach(), plain.virial.detach()))
        out = model(batch, virial=True, create_graph=True)
        loss = (out.forces ** 2).sum() + (out.virial ** 2).sum()
        grads = torch.autograd.grad(loss, [two_body.coef, model.fittings[0].mlp.layers[0].weight])
        results[-1] += (out.energy.detach(), out.forces.detach(), out.virial.detach(), *grads)
    two_body.use_fast = True
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert results[0][0].abs().max() > 1e-4 and results[0][-2].abs().max() > 1e-8  # not vacuous


def test_student_training_graph_gives_the_exact_parameter_gradients():
    """exact_hessian=False (the trainer's call: fused kernel, no second derivatives in positions) gives the same
    force/virial loss gradients with respect to every parameter as the full graph."""
    model = tiny("student")
    batch = collate([model.prepare(f) for f in (ethanol(3), periodic(5))])
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for exact in (True, False):
        out = model(batch, virial=True, create_graph=True, exact_hessian=exact)
        loss = (out.forces ** 2).sum() + (out.virial ** 2).sum() + out.energy.sum() ** 2
        grads.append(torch.autograd.grad(loss, params, allow_unused=True))
    for a, b in zip(*grads):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert max(float(g.abs().max()) for g in grads[1] if g is not None) > 1e-6
