"""Molecules from SMILES (RDKit ETKDG + MMFF, Å) and atom-mapped reactant/product geometry pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from lam_lab.data.errors import DataError

FRAGMENT_GAP = 2.8  # Å; closest heavy-atom contact between fragments of a bimolecular endpoint
CLOSE_RANGE = (2.4, 3.1)  # Å; start distance of a pair that bonds on the other side of the reaction


@dataclass
class ReactionEndpoints:
    """Reactant and product geometries (Å) in the same atom order, product aligned onto reactant."""

    name: str
    reactant: Atoms
    product: Atoms
    rmsd: float  # Å, mass-weighted, after alignment and before any relaxation


def _parse(smiles: str, source: str | None = None):
    """RDKit molecule with every hydrogen explicit (mapped ones kept where written)."""
    from rdkit import Chem

    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles, params)
    if mol is None:
        raise DataError(f"RDKit cannot parse SMILES {smiles!r}", source=source, field="smiles")
    return Chem.AddHs(mol)


def _embed(mol, n: int, seed: int, optimize: bool = True, source: str | None = None,
           close: list[tuple[int, int]] = ()) -> list[np.ndarray]:
    """Up to ``n`` ETKDG conformers (Å), relaxed with MMFF94 (UFF when MMFF lacks types).

    ``close`` atom pairs are held within ``CLOSE_RANGE`` Å (bounds matrix, then force-field
    restraints): a reacting pair must start near, or a path begins by tearing the molecule apart.
    """
    from rdkit.Chem import AllChem, rdDistGeom
    from rdkit.DistanceGeometry import DoTriangleSmoothing

    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if mol.GetNumAtoms() < 3:  # ETKDG handles 1-2 atoms poorly; a straight line is exact enough
        pos = np.zeros((mol.GetNumAtoms(), 3))
        if mol.GetNumAtoms() == 2:
            pos[1, 0] = 0.74 if all(a.GetAtomicNum() == 1 for a in mol.GetAtoms()) else 1.13
        return [pos]
    close = [(min(i, j), max(i, j)) for i, j in close]
    if close:
        bm = rdDistGeom.GetMoleculeBoundsMatrix(mol)
        for i, j in close:  # upper triangle holds upper bounds, lower triangle lower bounds
            bm[i, j] = min(bm[i, j], CLOSE_RANGE[1])
            bm[j, i] = min(bm[j, i], CLOSE_RANGE[0])
        if DoTriangleSmoothing(bm):
            params.SetBoundsMat(bm)
        else:
            close = []
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if not ids:
        params.useRandomCoords = True
        ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if not ids:
        raise DataError("RDKit could not embed the molecule in 3D", source=source, field="smiles")
    if optimize:
        _relax_conformers(mol, ids, close)
    return [mol.GetConformer(i).GetPositions() for i in ids]


def _relax_conformers(mol, ids: list[int], close: list[tuple[int, int]]) -> None:
    """MMFF94 (or UFF) relaxation of each conformer, keeping ``close`` pairs inside ``CLOSE_RANGE``."""
    from rdkit.Chem import AllChem

    mmff = AllChem.MMFFHasAllMoleculeParams(mol)
    if not mmff and not AllChem.UFFHasAllMoleculeParams(mol):
        return
    props = AllChem.MMFFGetMoleculeProperties(mol) if mmff else None
    for cid in ids:
        ff = (AllChem.MMFFGetMoleculeForceField(mol, props, confId=cid) if mmff
              else AllChem.UFFGetMoleculeForceField(mol, confId=cid))
        for i, j in close:
            if mmff:
                ff.MMFFAddDistanceConstraint(i, j, False, CLOSE_RANGE[0], CLOSE_RANGE[1], 100.0)
            else:
                ff.UFFAddDistanceConstraint(i, j, False, CLOSE_RANGE[0], CLOSE_RANGE[1], 100.0)
        ff.Minimize(maxIts=2000)


def smiles_to_atoms(smiles: str, seed: int = 0, n_conformers: int = 1, name: str | None = None) -> list[Atoms]:
    """3D conformers (Å) of a SMILES string: ETKDG embedding then MMFF94 relaxation."""
    mol = _parse(smiles)
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
    out = []
    for pos in _embed(mol, n_conformers, seed, source=smiles):
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.info.update({"smiles": smiles, "charge": int(charge)})
        if name:
            atoms.info["name"] = name
        out.append(atoms)
    return out


# -- atom-mapped pairs -------------------------------------------------------------------------------
def _keys(mol, smiles: str) -> list[tuple[int, int]]:
    """A key per atom: (map number, 0) for mapped atoms, (heavy neighbour's map, k) for its k-th implicit H."""
    keys: list[tuple[int, int]] = []
    count: dict[int, int] = {}
    for atom in mol.GetAtoms():
        amap = atom.GetAtomMapNum()
        if amap:
            keys.append((amap, 0))
            continue
        if atom.GetAtomicNum() != 1:
            raise DataError(f"heavy atom {atom.GetSymbol()}{atom.GetIdx()} has no atom-map number", source=smiles,
                            field="smiles")
        heavy = atom.GetNeighbors()[0].GetAtomMapNum()
        count[heavy] = count.get(heavy, 0) + 1
        keys.append((heavy, count[heavy]))
    return keys


def _bonds(mol, index: np.ndarray) -> set[tuple[int, int]]:
    """Bonds of ``mol`` as sorted pairs of atom indices renamed through ``index``."""
    out = set()
    for b in mol.GetBonds():
        i, j = int(index[b.GetBeginAtomIdx()]), int(index[b.GetEndAtomIdx()])
        out.add((min(i, j), max(i, j)))
    return out


def mapped_bond_graphs(reactant: str, product: str) -> tuple[frozenset, frozenset]:
    """Bond graphs (pairs i < j, in the reactant's atom order) of atom-mapped reactant and product SMILES."""
    r, p = _parse(reactant), _parse(product)
    rk, pk = _keys(r, reactant), _keys(p, product)
    where = {k: i for i, k in enumerate(pk)}
    inv = np.argsort([where[k] for k in rk])  # reactant index of each product atom
    return frozenset(_bonds(r, np.arange(len(rk)))), frozenset(_bonds(p, inv))


def _fragments(mol) -> list[list[int]]:
    from rdkit import Chem

    return [list(f) for f in Chem.GetMolFrags(mol)]


def kabsch(mobile: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``mobile`` rotated and translated onto ``target`` with minimum (weighted) RMSD, no reflection."""
    w = np.ones(len(mobile)) if weights is None else np.asarray(weights, dtype=float)
    w = w[:, None] / w.sum()
    mc, tc = (w * mobile).sum(0), (w * target).sum(0)
    h = (w * (mobile - mc)).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return (mobile - mc) @ rot.T + tc


def _match_hydrogens(pos: np.ndarray, target: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Permutation of equivalent H (same heavy atom) that brings ``pos`` closest to ``target``."""
    from scipy.optimize import linear_sum_assignment

    perm = np.arange(len(pos))
    for g in groups:
        if len(g) < 2:
            continue
        cost = np.linalg.norm(pos[g][:, None] - target[g][None], axis=-1)
        rows, cols = linear_sum_assignment(cost)
        perm[np.asarray(g)[cols]] = np.asarray(g)[rows]
    return perm


def _fit(pos: np.ndarray, target: np.ndarray, groups: list[list[int]], w: np.ndarray) -> tuple[np.ndarray, float]:
    """Best mass-weighted rigid fit of ``pos`` onto ``target`` with equivalent-H swaps: (fit, RMSD Å)."""
    for _ in range(3):
        pos = pos[_match_hydrogens(kabsch(pos, target, w), target, groups)]
    fit = kabsch(pos, target, w)
    return fit, float(np.sqrt(np.sum(w * np.sum((fit - target) ** 2, axis=1)) / w.sum()))


def align(mobile: Atoms, target: Atoms) -> Atoms:
    """A copy of ``mobile`` rotated/translated onto ``target`` (same atom order), mass-weighted Kabsch."""
    out = mobile.copy()
    out.positions = kabsch(mobile.positions, target.positions, mobile.get_masses())
    return out


def _separate(pos: np.ndarray, numbers: np.ndarray, frags: list[list[int]], gap: float) -> np.ndarray:
    """Push fragments apart along their centroid line until the closest contact is ``gap`` Å."""
    pos = pos.copy()
    for _ in range(200):
        moved = False
        for a in range(len(frags)):
            for b in range(a + 1, len(frags)):
                fa, fb = frags[a], frags[b]
                d = np.linalg.norm(pos[fa][:, None] - pos[fb][None], axis=-1)
                heavy = (numbers[fa][:, None] > 1) | (numbers[fb][None] > 1)
                need = np.where(heavy, gap, gap - 0.6)  # H···H contacts may sit closer
                if np.any(d < need):
                    v = pos[fb].mean(0) - pos[fa].mean(0)
                    v = v / (np.linalg.norm(v) + 1e-12)
                    pos[fb] += 0.05 * v
                    pos[fa] -= 0.05 * v
                    moved = True
        if not moved:
            break
    return pos


def _placed(x: np.ndarray, body: np.ndarray) -> np.ndarray:
    """A centred rigid body rotated by the rotation vector ``x[:3]`` and moved to ``x[3:]`` (Å)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(x[:3]).apply(body) + x[3:]


def _dock_cost(x: np.ndarray, body: np.ndarray, anchor: np.ndarray, cross: list[tuple[int, np.ndarray]],
               target: float, clash: float) -> float:
    """Squared misses of the contact distances plus squared overlaps below ``clash`` Å."""
    b = _placed(x, body)
    d = np.linalg.norm(b[:, None, :] - anchor[None, :, :], axis=-1)
    return float(np.sum(np.clip(clash - d, 0, None) ** 2)) + sum(
        (np.linalg.norm(b[k] - q) - target) ** 2 for k, q in cross)


def _dock(pos: np.ndarray, frags: list[list[int]], pairs: list[tuple[int, int]], target: float = 1.9,
          clash: float = 2.2) -> np.ndarray:
    """Positions (Å) with each fragment after the first moved rigidly so the ``pairs`` between fragments sit near
    ``target`` Å (an H-bond-like contact) and no other inter-fragment pair is closer than ``clash`` Å."""
    from scipy.optimize import minimize

    out = np.array(pos, dtype=float)
    fixed = list(frags[0])
    for frag in frags[1:]:
        local = {a: k for k, a in enumerate(frag)}
        cross = [(local[i], out[j]) for p in pairs for i, j in (p, p[::-1]) if i in local and j in fixed]
        body = out[frag] - out[frag].mean(axis=0)
        args = (body, out[fixed], cross, target, clash)
        start = out[fixed].mean(axis=0) + np.array([4.0, 0.0, 0.0])
        best = min((minimize(_dock_cost, np.r_[rv, start], args=args, method="Powell")
                    for rv in np.random.default_rng(0).normal(size=(8, 3))), key=lambda r: r.fun)
        out[frag] = _placed(best.x, body)
        fixed += list(frag)
    return out


def _hydrogen_groups(keys: list[tuple[int, int]]) -> list[list[int]]:
    """Indices of the unmapped hydrogens riding on each heavy atom (groups that may permute in a fit)."""
    groups: dict[int, list[int]] = {}
    for i, (m, k) in enumerate(keys):
        if k:
            groups.setdefault(m, []).append(i)
    return list(groups.values())


def _best_assembly(a_conf: list[np.ndarray], o_conf: list[np.ndarray], o_frags: list[list[int]],
                   hgroups: list[list[int]], masses: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(RMSD Å, anchor conformer, other side assembled onto it) with the lowest mass-weighted RMSD: each
    fragment of the other side takes whichever of its conformers fits the anchor conformer best."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for target in a_conf:
        assembled = np.zeros_like(target)
        total = 0.0
        for frag in o_frags:
            fg = [[i for i in g if i in frag] for g in hgroups]
            loc = {a: j for j, a in enumerate(frag)}
            fg = [[loc[i] for i in g] for g in fg if g]
            fits = [_fit(c[frag], target[frag], fg, masses[frag]) for c in o_conf]
            fit, r = min(fits, key=lambda x: x[1])
            assembled[frag] = fit
            total += r**2 * masses[frag].sum()
        rmsd = float(np.sqrt(total / masses.sum()))
        if best is None or rmsd < best[0]:
            best = (rmsd, target, assembled)
    assert best is not None
    return best


def mapped_pair(
    reactant: str, product: str, name: str = "reaction", seed: int = 0, n_conformers: int = 12,
    gap: float = FRAGMENT_GAP,
) -> ReactionEndpoints:
    """Reactant/product geometries from atom-mapped SMILES, chosen and aligned for the lowest RMSD.

    Every heavy atom carries a map number; hydrogens that move are written ``[H:n]``; the other
    hydrogens follow their heavy atom. The side with more fragments has each fragment fitted onto
    the other side's geometry, then fragments are pushed ``gap`` Å apart.
    """
    src = f"{name}: {reactant}>>{product}"
    rmol, pmol = _parse(reactant, src), _parse(product, src)
    rkeys, pkeys = _keys(rmol, src), _keys(pmol, src)
    if sorted(rkeys) != sorted(pkeys) or len(set(rkeys)) != len(rkeys):
        raise DataError("reactant and product atom maps differ (check map numbers and H counts)", source=src,
                        field="smiles")
    pidx = {k: i for i, k in enumerate(pkeys)}
    order = np.array([pidx[k] for k in rkeys])  # product atom for each reactant atom
    rnum = np.array([a.GetAtomicNum() for a in rmol.GetAtoms()])
    pnum = np.array([a.GetAtomicNum() for a in pmol.GetAtoms()])[order]
    if not np.array_equal(rnum, pnum):
        raise DataError("an atom-map number names different elements on the two sides", source=src, field="smiles")
    from ase.data import atomic_masses

    masses = atomic_masses[rnum]
    hgroups = _hydrogen_groups(rkeys)

    rfr, pfr_raw = _fragments(rmol), _fragments(pmol)
    inv = np.argsort(order)  # reactant index of each product atom
    pfr = [sorted(int(inv[i]) for i in f) for f in pfr_raw]
    rb = _bonds(rmol, np.arange(len(rnum)))
    pb = _bonds(pmol, inv)
    same_r = {i: k for k, f in enumerate(rfr) for i in f}
    same_p = {i: k for k, f in enumerate(pfr) for i in f}
    r_close = [(i, j) for i, j in pb - rb if same_r[i] == same_r[j]]
    p_close = [(int(order[i]), int(order[j])) for i, j in rb - pb if same_p[i] == same_p[j]]
    # the side with fewer fragments is the anchor: its whole-molecule conformers are the targets
    anchor_is_r = len(rfr) <= len(pfr)
    a_mol, o_mol = (rmol, pmol) if anchor_is_r else (pmol, rmol)
    a_close, o_close = (r_close, p_close) if anchor_is_r else (p_close, r_close)
    a_conf = _embed(a_mol, n_conformers, seed, source=src, close=a_close)
    o_conf = _embed(o_mol, n_conformers, seed + 1, source=src, close=o_close)
    if anchor_is_r:
        o_conf = [c[order] for c in o_conf]
        o_frags = pfr
    else:
        a_conf = [c[order] for c in a_conf]
        o_frags = rfr
    complex_to_complex = min(len(rfr), len(pfr)) > 1  # e.g. a dimer's double proton transfer
    if complex_to_complex:  # RDKit embeds each molecule at the origin: dock them by the bonds formed between them
        forming = sorted(pb - rb) if anchor_is_r else sorted(rb - pb)
        a_conf = [_dock(c, rfr if anchor_is_r else pfr, forming) for c in a_conf]
    rmsd, target, other = _best_assembly(a_conf, o_conf, o_frags, hgroups, masses)
    if len(o_frags) > 1 and not complex_to_complex:  # a complex's other side is fitted onto it, already in place
        other = _separate(other, rnum, o_frags, gap)
    rpos, ppos = (target, other) if anchor_is_r else (other, target)
    charge = sum(a.GetFormalCharge() for a in rmol.GetAtoms())
    info = {"reaction": name, "charge": int(charge)}
    r_atoms = Atoms(numbers=rnum, positions=rpos, info={**info, "smiles": reactant, "role": "reactant"})
    p_atoms = Atoms(numbers=rnum, positions=ppos, info={**info, "smiles": product, "role": "product"})
    return ReactionEndpoints(name, r_atoms, p_atoms, rmsd)
