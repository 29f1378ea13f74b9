"""PySCF pieces the TS refinement relies on: the analytic Hessian equals finite differences of the
analytic forces, and DFTCalculator (reusing the last density) gives the labeler's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

pytest.importorskip("pyscf")

from lam_lab.data.frame import Frame  # noqa: E402
from lam_lab.labelers.dft import DFTCalculator, DFTLabeler, DFTSettings  # noqa: E402
from lam_lab.sampling.vibrations import fd_hessian, harmonic  # noqa: E402


@pytest.fixture(scope="module")
def water():
    return Atoms("OH2", [[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])


@pytest.fixture(scope="module")
def labeler():
    return DFTLabeler(DFTSettings(xc="pbe", basis="sto-3g", conv_tol=1e-11, threads=1))


def test_analytic_hessian_matches_finite_differences_of_forces(water, labeler):
    frame = Frame(water.numbers, water.positions, None, [False] * 3, {}, {})
    h = labeler.hessian(frame)
    fd = fd_hessian(water, lambda a: DFTCalculator(labeler), delta=0.002)
    assert h.shape == (9, 9) and np.allclose(h, h.T, atol=1e-3)
    assert np.abs(h - fd).max() < 0.02 * np.abs(fd).max()
    freqs = harmonic(water, h).frequencies
    assert len(freqs) == 3 and np.all(freqs > 0)


def test_dft_calculator_gives_the_labelers_numbers(water, labeler):
    calc = DFTCalculator(labeler)
    a = water.copy()
    a.calc = calc
    e1, f1 = a.get_potential_energy(), a.get_forces()
    ref = labeler.compute(Frame(a.numbers, a.positions, None, [False] * 3, {}, {}))
    assert e1 == pytest.approx(ref.energy, abs=1e-6) and np.allclose(f1, ref.forces, atol=1e-4)
    a.positions[1, 2] += 0.02  # the next SCF starts from the stored density and lands on the same state
    e2 = a.get_potential_energy()
    ref2 = labeler.compute(Frame(a.numbers, a.positions, None, [False] * 3, {}, {}))
    assert e2 == pytest.approx(ref2.energy, abs=1e-6)
