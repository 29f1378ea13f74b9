"""Candidate frames around a reaction: CI-NEB path (with its intermediate bands) and MD from R, TS, P.

The band's highest image is role ``ts`` here only as the band maximum: it is no verified saddle, and
rxn-xtb keeps these frames (as role ``path-max``) just for reactions whose TS search did not verify,
after :func:`ends_mismatch` found the band's ends to be the reaction's minima.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ase import Atoms

from lam_lab.data.frame import Frame
from lam_lab.datasets._stages import BuildContext, stage
from lam_lab.datasets.reactions import Reaction


@dataclass
class PathSampling:
    """How a reaction is sampled: NEB images/steps, bands kept every k steps, MD temperatures (K)."""

    n_images: int = 11
    neb_steps: int = 600
    record_every: int = 10
    n_conformers: int = 12
    md_temperatures: tuple[float, ...] = (300.0, 600.0)
    md_steps: int = 400
    md_interval: int = 10
    md_starts: tuple[str, ...] = ("reactant", "ts", "product")
    seed: int = 0


def _plain_frame(atoms: Atoms, info: dict) -> Frame:
    """A label-free frame with only ``info`` (no calculator results, no stray ASE info keys)."""
    return Frame(atoms.numbers, atoms.positions, None, [False] * 3, {}, {k: _py(v) for k, v in info.items()})


def _py(v):
    """Plain Python scalars for JSON (numpy scalars become int/float/bool)."""
    return v.item() if hasattr(v, "item") else v


def neb_frames(ctx: BuildContext, reaction: Reaction, cfg: PathSampling) -> list[Frame]:
    """Final CI-NEB images (roles reactant/path/ts/product) then the recorded intermediate bands."""
    from lam_lab.sampling.molecules import mapped_pair
    from lam_lab.sampling.neb import NEBConfig, run_neb

    def make() -> list[Frame]:
        ends = mapped_pair(reaction.reactant, reaction.product, reaction.name, seed=cfg.seed,
                           n_conformers=cfg.n_conformers)
        res = run_neb(ends.reactant, ends.product, config=NEBConfig(
            n_images=cfg.n_images, steps=cfg.neb_steps, record_every=cfg.record_every, seed=cfg.seed))
        ctx.say(f"NEB {reaction.name}: barrier {res.barrier:.2f} eV, ΔE {res.reaction_energy:.2f} eV, "
                f"{'converged' if res.converged else 'NOT converged'} in {res.steps} steps (fmax {res.fmax:.3f} eV/Å)")
        meta = {"neb_converged": bool(res.converged), "neb_barrier": float(res.barrier)}
        out = [_plain_frame(im, {**{k: im.info[k] for k in ("charge", "role", "neb_image") if k in im.info},
                                 "reaction": reaction.name, "source": "neb", **meta}) for im in res.images]
        for k, band in enumerate(res.history):
            for j, im in enumerate(band, start=1):
                out.append(_plain_frame(im, {"charge": im.info.get("charge", 0), "role": "path", "neb_image": j,
                                             "neb_iteration": (k + 1) * cfg.record_every,
                                             "reaction": reaction.name, "source": "neb"}))
        return out

    params = {"reaction": asdict(reaction), "n_images": cfg.n_images, "neb_steps": cfg.neb_steps,
              "record_every": cfg.record_every, "n_conformers": cfg.n_conformers, "seed": cfg.seed}
    return stage(ctx, f"neb-{reaction.name}", params, make)


def md_frames(ctx: BuildContext, reaction: Reaction, cfg: PathSampling, neb: list[Frame]) -> list[Frame]:
    """Langevin MD (GFN2-xTB) from the reactant, TS and product of the path at each temperature."""
    from lam_lab.sampling.md import MDConfig, run_md
    from lam_lab.sampling.neb import xtb_calculator

    starts = {f.info["role"]: f for f in neb if f.info.get("source") == "neb" and "neb_iteration" not in f.info
              and f.info.get("role") in ("reactant", "ts", "product")}

    def make() -> list[Frame]:
        out: list[Frame] = []
        md = MDConfig(steps=cfg.md_steps, interval=cfg.md_interval, seed=cfg.seed)
        for s_i, start in enumerate(cfg.md_starts):
            atoms = starts[start].to_atoms()
            atoms.info = {"charge": starts[start].info.get("charge", 0)}
            for t_i, temp in enumerate(cfg.md_temperatures):
                run = run_md(atoms, xtb_calculator, temp, md, seed=cfg.seed + 100 * s_i + t_i)
                if run.stopped:
                    ctx.say(f"MD {reaction.name} from {start} at {temp:.0f} K stopped after {run.steps_done} "
                            f"steps: {run.stopped}")
                out += [_plain_frame(a, {"charge": atoms.info["charge"], "reaction": reaction.name, "source": "md",
                                         "start": start, "temperature": float(temp), "md_step": a.info["md_step"]})
                        for a in run.frames]
        return out

    params = {"reaction": asdict(reaction), "neb": [f.positions.round(6).tolist() for f in starts.values()],
              "temperatures": list(cfg.md_temperatures), "steps": cfg.md_steps, "interval": cfg.md_interval,
              "starts": list(cfg.md_starts), "seed": cfg.seed}
    return stage(ctx, f"md-{reaction.name}", params, make)


def smiles_graphs(reaction: Reaction) -> tuple[frozenset, frozenset]:
    """Bond graphs (pairs i < j, mapped reactant atom order) of the reaction's reactant and product SMILES."""
    from lam_lab.sampling import mapped_bond_graphs

    return mapped_bond_graphs(reaction.reactant, reaction.product)


def ends_mismatch(reaction: Reaction, frames: list[Frame]) -> str | None:
    """None when the final band's reactant and product have the SMILES bond graphs, else what differs."""
    from lam_lab.md.reactive import bond_graph

    final = {f.info["role"]: f for f in frames if f.info.get("source") == "neb" and "neb_iteration" not in f.info}
    out = []
    for role, want in zip(("reactant", "product"), smiles_graphs(reaction)):
        got = bond_graph(final[role].to_atoms())
        if got != want:
            extra, missing = sorted(got - want), sorted(want - got)
            out.append(f"NEB {role} is not the {role} (bonds {extra} formed, {missing} missing)")
    return "; ".join(out) or None


def sample_reaction(ctx: BuildContext, reaction: Reaction, cfg: PathSampling) -> list[Frame]:
    """NEB frames followed by MD frames of one reaction (label-free; info: reaction, source, role...)."""
    neb = neb_frames(ctx, reaction, cfg)
    return neb + md_frames(ctx, reaction, cfg, neb)
