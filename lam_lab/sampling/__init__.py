"""Sampling: molecules from SMILES, atom-mapped reaction endpoints, CI-NEB paths, verified TSs, Langevin MD, FPS."""

from lam_lab.sampling.md import MDConfig, MDRun, run_md, sample_md
from lam_lab.sampling.molecules import ReactionEndpoints, align, mapped_bond_graphs, mapped_pair, smiles_to_atoms
from lam_lab.sampling.neb import NEBConfig, NEBResult, relax, run_neb, xtb_calculator
from lam_lab.sampling.select import farthest_point_indices, fingerprint, select_fps
from lam_lab.sampling.ts import TSConfig, TSResult, find_ts, refine_ts, verify_ts
from lam_lab.sampling.vibrations import Harmonic, fd_hessian, harmonic, normal_mode_samples

__all__ = [
    "smiles_to_atoms", "mapped_pair", "mapped_bond_graphs", "align", "ReactionEndpoints",
    "NEBConfig", "NEBResult", "run_neb", "relax", "xtb_calculator",
    "MDConfig", "MDRun", "run_md", "sample_md",
    "fingerprint", "farthest_point_indices", "select_fps",
    "TSConfig", "TSResult", "find_ts", "refine_ts", "verify_ts",
    "Harmonic", "fd_hessian", "harmonic", "normal_mode_samples",
]
