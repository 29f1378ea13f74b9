"""The seed-001 equations one at a time (switch Eq. 13, smooth softmax Eq. 35–36) and where each one lives."""

from __future__ import annotations

import re

import numpy as np
import torch


def test_switch_eq13_is_c2():
    from lam_lab.nn.env_matrix import switch

    rs, rc = 1.0, 3.0
    r = torch.tensor([0.5, 1.0, 2.0, 3.0, 3.5], dtype=torch.float64)
    np.testing.assert_allclose(switch(r, rs, rc).numpy(), [1, 1, 0.5, 0, 0], atol=1e-15)
    for r0 in (rs, rc):  # first and second derivatives vanish on both sides of each end
        for side in (-1e-4, 1e-4):
            x = torch.tensor(r0 + side, dtype=torch.float64, requires_grad=True)
            (d1,) = torch.autograd.grad(switch(x, rs, rc), x, create_graph=True)
            (d2,) = torch.autograd.grad(d1, x)
            assert abs(float(d1.detach())) < 1e-6 and abs(float(d2)) < 1e-2


def test_smooth_softmax_eq35_36():
    from lam_lab.nn.repformer import padded_softmax, smooth_softmax_dagger, smooth_softmax_star

    x = torch.randn(3, 7, dtype=torch.float64)
    np.testing.assert_allclose(smooth_softmax_star(x, torch.ones_like(x)).numpy(), torch.softmax(x, -1).numpy(), atol=1e-14)
    w = torch.rand(3, 7, dtype=torch.float64)
    w[:, -2:] = 0  # padding / atoms on the cutoff
    full = smooth_softmax_star(x, w)
    assert torch.all(full[:, -2:] == 0)
    # trimming padded slots and counting them in the normaliser gives the same map
    np.testing.assert_allclose(smooth_softmax_star(x[:, :5], w[:, :5], n_pad=2).numpy(), full[:, :5].numpy(), atol=1e-15)
    z = torch.randn(2, 4, dtype=torch.float64)
    ref = torch.softmax(torch.cat([z, torch.full((2, 3), -20.0, dtype=torch.float64)], -1), -1)[:, :4]
    np.testing.assert_allclose(padded_softmax(z, 3, -20.0).numpy(), ref.numpy(), atol=1e-15)
    ww = w[:, :, None] * w[:, None, :]
    y = torch.randn(3, 7, 7, dtype=torch.float64)
    np.testing.assert_allclose(smooth_softmax_dagger(y, ww).sum(-1)[:, -2:].numpy(), 0.0)


def test_every_equation_has_a_named_home():
    """Eq. 1–32 and 35–36 of seed 001 each appear in the docstring of a function or class."""
    import importlib
    import inspect

    names = ("nn.dpa2", "nn.energy_bias", "nn.env_matrix", "nn.fitting", "nn.repformer", "nn.repinit",
             "nn.symmetrization", "nn.type_embedding", "potential")
    mods = [importlib.import_module(f"lam_lab.{name}") for name in names]
    docs = []
    for mod in mods:
        for _, obj in inspect.getmembers(mod, lambda o: inspect.isfunction(o) or inspect.isclass(o)):
            if obj.__module__ != mod.__name__:
                continue
            docs.append(obj.__doc__ or "")
            if inspect.isclass(obj):
                docs += [m.__doc__ or "" for _, m in inspect.getmembers(obj, inspect.isfunction)]
    found = set()
    for doc in docs:
        for group in re.findall(r"Eq\. ?((?:\d+(?:\s*[–-]\s*\d+)?)(?:,\s*\d+(?:\s*[–-]\s*\d+)?)*)", doc):
            for part in group.split(","):
                a, b = re.match(r"(\d+)(?:\s*[–-]\s*(\d+))?", part.strip()).groups()
                found.update(range(int(a), int(b or a) + 1))
    missing = sorted((set(range(1, 33)) | {35, 36}) - found)
    assert not missing, f"equations without a named function/class: {missing}"
