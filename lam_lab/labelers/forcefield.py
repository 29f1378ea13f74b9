"""Classical water force field: TIP3P between molecules + CHARMM harmonic bonds/angle inside them.

ASE's ``ase.calculators.tip3p.TIP3P`` gives only the intermolecular energy (TIP3P is a rigid
model: nothing holds a flexed molecule together), no stress, and orthorhombic boxes ≥ 2·rc only.
Labels for flexible water need the intramolecular terms and a virial, so this module evaluates
the same intermolecular TIP3P energy as ASE (same charges, O–O Lennard-Jones, and the same smooth
O–O switched cutoff, tested against ASE) with a neighbor list (vesin: any cell, image sums), and
adds the CHARMM flexible TIP3P bond and angle terms, E = k_b (r − r0)² + k_θ (θ − θ0)².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.labelers.base import Labeler

MAX_OH = 1.6  # Å; an H farther than this from the O before it means the atoms are not O,H,H grouped


@dataclass
class WaterFFSettings:
    """TIP3P/flexible options: cutoff rc and switching width (Å) on the O–O distance, as in ASE.

    flexible: add CHARMM's harmonic O–H bonds (k_bond kcal/mol/Å², r0 Å) and H–O–H angle
    (k_angle kcal/mol/rad², theta0 degrees); False gives ASE's rigid-model TIP3P energy only.
    """

    rc: float = 5.0
    width: float = 1.0
    flexible: bool = True
    k_bond: float = 450.0
    r0: float = 0.9572
    k_angle: float = 55.0
    theta0: float = 104.52


class EFV(NamedTuple):
    """Energy (eV), forces (eV/Å) and virial (eV) of one evaluation."""

    energy: float
    forces: np.ndarray
    virial: np.ndarray


class WaterFFLabeler(Labeler):
    """TIP3P water (flexible by default) for water clusters and periodic liquid boxes, O,H,H order."""

    software = "lam_lab"

    def __init__(self, settings: WaterFFSettings | None = None):
        super().__init__(settings or WaterFFSettings())
        s = self.settings
        if not 0 < s.width <= s.rc:
            raise ValueError(f"need 0 < width <= rc, got width={s.width}, rc={s.rc}")

    @property
    def name(self) -> str:
        return "tip3p"

    @property
    def version(self) -> str:
        import ase

        import lam_lab

        return f"{lam_lab.__version__} (ase {ase.__version__})"

    def provenance(self):  # type: ignore[override]
        """Names the model honestly: rigid TIP3P terms, plus CHARMM intramolecular terms when flexible."""
        prov = super().provenance()
        prov.method = ("TIP3P intermolecular (ASE parameters, switched O-O cutoff) + CHARMM harmonic "
                       "O-H bond and H-O-H angle (flexible TIP3P)") if self.settings.flexible else \
            "TIP3P intermolecular only (rigid-water model; ASE parameters, switched O-O cutoff)"
        return prov

    def check(self, frame: Frame, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Structure problems plus O,H,H ordering and whole molecules."""
        problems = super().check(frame, index, source)

        def bad(field: str, msg: str) -> None:
            problems.append(DataError(msg, source=source, frame=index, field=field))

        n = len(frame)
        if n == 0 or n % 3:
            bad("numbers", f"{n} atoms is not a whole number of water molecules (O,H,H)")
            return problems
        expected = np.tile([8, 1, 1], n // 3)
        wrong = np.flatnonzero(frame.numbers != expected)
        if wrong.size:
            k = int(wrong[0])
            bad("numbers", f"TIP3P needs molecules in O,H,H order; atom {k} is {frame.symbols[k]}, "
                           f"expected {'O' if k % 3 == 0 else 'H'}")
            return problems
        oh = _oh_vectors(frame)
        far = np.flatnonzero(np.linalg.norm(oh, axis=-1).max(axis=1) > MAX_OH)
        if far.size:
            bad("positions", f"molecule {int(far[0])} (atoms {3 * int(far[0])}-{3 * int(far[0]) + 2}): an H is more "
                             f"than {MAX_OH} Å from its O; atoms must be grouped O,H,H per molecule")
        return problems

    def compute(self, frame: Frame) -> Labels:
        """Energy (eV), forces (eV/Å), virial (eV; only for 3-D periodic cells)."""
        out = water_energy(frame, self.settings)
        virial = out.virial if frame.is_periodic and all(frame.pbc) else None
        return Labels(out.energy, out.forces, virial)


def _oh_vectors(frame: Frame) -> np.ndarray:
    """Minimum-image O→H vectors [n_mol, 2, 3] (Å), so molecules split by the cell stay whole."""
    from ase.geometry import find_mic

    r = frame.positions.reshape(-1, 3, 3)
    v = (r[:, 1:] - r[:, :1]).reshape(-1, 3)
    if frame.is_periodic:
        v, _ = find_mic(v, frame.cell, frame.pbc)
    return v.reshape(-1, 2, 3)


def water_energy(frame: Frame, s: WaterFFSettings) -> EFV:
    """TIP3P (+ flexible terms) energy, forces and virial W = −∂E/∂ε of an O,H,H-ordered frame."""
    oh = _oh_vectors(frame)
    inter = _intermolecular(frame, oh, s)
    if not s.flexible:
        return inter
    intra = _intramolecular(oh, s)
    return EFV(inter.energy + intra.energy, inter.forces + intra.forces, inter.virial + intra.virial)


def _switch(d: np.ndarray, rc: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """ASE TIP3P's cutoff function t(d) (1 → 0 over [rc − width, rc]) and its derivative (1/Å)."""
    y = np.clip((d - rc + width) / width, 0.0, 1.0)
    t = 1.0 - y * y * (3.0 - 2.0 * y)
    dt = np.where((y > 0) & (y < 1), -6.0 / width * y * (1.0 - y), 0.0)
    return t, dt


def _intermolecular(frame: Frame, oh: np.ndarray, s: WaterFFSettings) -> EFV:
    """TIP3P Coulomb + O–O LJ between molecules whose O–O image distance is below rc."""
    from ase import units
    from ase.calculators.tip3p import epsilon0, qH, sigma0
    from vesin import NeighborList

    from lam_lab.nn.neighbor_list import check_geometry

    n_mol = len(oh)
    o_pos = frame.positions[::3]
    # whole molecules: sites relative to their own O, so the O–O image shift moves all three
    sites = np.concatenate([np.zeros((n_mol, 1, 3)), oh], axis=1)  # [M, 3, 3]
    box = frame.cell if frame.is_periodic else np.zeros((3, 3))
    check_geometry(o_pos, box if frame.is_periodic else None, where="water force field")  # vesin dies on NaN/1e6 Å
    i, j, S = NeighborList(cutoff=s.rc, full_list=False).compute(o_pos, box, frame.pbc.tolist(), "ijS")
    doo = o_pos[j] - o_pos[i] + S @ box  # [P, 3]
    d = np.linalg.norm(doo, axis=1)
    t, dt = _switch(d, s.rc, s.width)

    c6 = (sigma0**2 / d**2) ** 3
    e_lj = 4 * epsilon0 * (c6 * c6 - c6)
    de_lj = -24 * epsilon0 * (2 * c6 * c6 - c6) / d  # dE_LJ/dd

    q = np.array([-2 * qH, qH, qH])
    kq = units.Hartree * units.Bohr * q[:, None] * q[None, :]  # eV·Å, [3, 3]
    dab = doo[:, None, None, :] + sites[j][:, None, :, :] - sites[i][:, :, None, :]  # [P, a, b, 3]
    r = np.linalg.norm(dab, axis=-1)
    e_c = kq / r  # [P, 3, 3]

    u = e_lj + e_c.sum(axis=(1, 2))
    energy = float(np.dot(t, u))
    g_oo = ((dt * u + t * de_lj) / d)[:, None] * doo  # ∂E/∂(O–O vector), [P, 3]
    g_ab = (-(t[:, None, None] * e_c) / r**2)[..., None] * dab  # ∂E/∂(site–site vector), [P, 3, 3, 3]

    forces = np.zeros((n_mol, 3, 3))
    # a site–site vector runs from site a of molecule i to site b of molecule j
    np.add.at(forces, j, -g_ab.sum(axis=1))
    np.add.at(forces, i, g_ab.sum(axis=2))
    np.add.at(forces[:, 0], j, -g_oo)
    np.add.at(forces[:, 0], i, g_oo)
    virial = -(np.einsum("pk,pl->kl", doo, g_oo) + np.einsum("pabk,pabl->kl", dab, g_ab))
    return EFV(energy, forces.reshape(-1, 3), virial)


def _intramolecular(oh: np.ndarray, s: WaterFFSettings) -> EFV:
    """CHARMM harmonic O–H bonds and H–O–H angle of each molecule."""
    from ase import units

    kcal = units.kcal / units.mol
    kb, ka = s.k_bond * kcal, s.k_angle * kcal
    r = np.linalg.norm(oh, axis=-1)  # [M, 2]
    g = (2 * kb * (r - s.r0) / r)[..., None] * oh  # ∂E/∂(O→H), [M, 2, 3]
    energy = float(kb * np.sum((r - s.r0) ** 2))

    u, w = oh[:, 0], oh[:, 1]
    ru, rw = r[:, 0:1], r[:, 1:2]
    cos = np.clip(np.sum(u * w, axis=1) / (r[:, 0] * r[:, 1]), -1.0, 1.0)
    theta = np.arccos(cos)
    sin = np.maximum(np.sin(theta), 1e-8)  # a linear molecule has a cusp; keep the gradient finite
    de = 2 * ka * (theta - np.deg2rad(s.theta0))
    energy += float(np.sum(ka * (theta - np.deg2rad(s.theta0)) ** 2))
    # dθ/du = −(w/(|u||w|) − cos·u/|u|²)/sin θ, and symmetrically for w
    gu = (-de / sin)[:, None] * (w / (ru * rw) - cos[:, None] * u / ru**2)
    gw = (-de / sin)[:, None] * (u / (ru * rw) - cos[:, None] * w / rw**2)
    g[:, 0] += gu
    g[:, 1] += gw

    forces = np.zeros((len(oh), 3, 3))
    forces[:, 1:] = -g
    forces[:, 0] = g.sum(axis=1)
    virial = -np.einsum("mhk,mhl->kl", oh, g)
    return EFV(energy, forces.reshape(-1, 3), virial)
