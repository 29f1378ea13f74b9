"""The shipped Δ models: GFN2-xTB → ωB97X/6-31G(d) for C/H/N/O reactions, fine-tuned from ``lam-chon-small``.

``train_delta_model(DeltaRecipe())`` fine-tunes in Δ mode (seed 000: learn DFT − GFN2-xTB) on the train split
of ``rxn-dft``, validates on its val split, and scores every held-out (test) reaction next to GFN2-xTB alone
on the same frames; ``install=True`` writes ``pretrained/files/<name>.pt`` with its card. Load it with
``ll.pretrained.load(name)``; ``ll.LAMCalculator(model)`` adds GFN2-xTB back. Energies eV, forces eV/Å,
errors meV/Å, meV/atom and eV (barriers).

Two models ship. ``lam-chon-delta-heldout`` is trained on the train split only: its card's held-out rows and
``benchmarks/delta_loro.py`` measure transfer to reactions it never saw. ``lam-chon-delta``, the one to use,
continues it on every reaction (train + test splits; the val split still validates); its card shows the
twin's held-out rows, since it has no held-out reaction of its own. Each stage is one run of this module (its card's
``reproduce`` chains the commands of its stages, and a stage started from a run folder's ``finetuned.pt`` reads that
run's ``delta-card.json`` so the card lists every stage); ``scripts/remake_delta.sh`` runs the shipped recipe (three
seeds, 7,826 + 6,404 + 5,532 steps of 512 atoms) and ships one seed and the committees::

    python -m lam_lab.pretrained.delta_model --steps 7826 --seed 1 --batch-atoms 512 --out RUN/stage1-s1
    python -m lam_lab.pretrained.delta_model --pretrained RUN/stage1-s1/finetuned.pt --steps 6404 --lr 1e-3 \
        --seed 1 --batch-atoms 512 --out RUN/stage2-s1
    python -m lam_lab.pretrained.delta_model --pretrained RUN/stage2-s1/finetuned.pt --splits train,test \
        --steps 5532 --lr 1e-3 --seed 2 --batch-atoms 512 --out RUN/stage3-s1
    python -m lam_lab.pretrained.delta_model --install-run RUN/stage2-s1 --name lam-chon-delta-heldout
    python -m lam_lab.pretrained.delta_model --install-run RUN/stage3-s1 --name lam-chon-delta
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lam_lab.data.dataset import Dataset
from lam_lab.datasets.closed_shell import labels_limit
from lam_lab.pretrained.delta_card import (
    BASE,
    HIGH,
    card_scores,
    delta_card_markdown,
    held_out_ratios,
)

if TYPE_CHECKING:
    from lam_lab.train.config import TrainConfig

NAME = "lam-chon-delta"  # trained on every reaction of rxn-dft (train + test splits): the model to use
HELDOUT = "lam-chon-delta-heldout"  # its twin, trained on the train split only: the held-out (LORO) figures
NEAR_TS_EV = 0.5  # "near the TS": |E_xTB(frame) − E_xTB(TS)| ≤ this (eV), the frames' info['xtb_rel_ts']
RUN_CARD = "delta-card.json"  # the card written beside a run folder's finetuned.pt: a later stage reads its stages


@dataclass
class DeltaRecipe:
    """How the shipped Δ model is made (data, start, budget); ``train`` holds TrainConfig overrides."""

    name: str = HELDOUT  # splits ("train", "test"): NAME
    data: str = "rxn-dft"  # built-in name or a file with both label sets and info['split']
    label: str = HIGH
    baseline: str = BASE
    pretrained: str | None = "lam-chon-small"  # None: Δ from scratch (with ``preset``)
    preset: Any = "dpa2-small"
    minutes: float | None = 90.0
    steps: int | None = None
    seed: int = 0
    train: dict[str, Any] = field(default_factory=lambda: {"batch_atoms": 128})
    splits: tuple[str, ...] = ("train",)  # data splits trained on; with "test" no reaction is held out
    heldout_from: str | None = None  # with "test" trained on: the shipped twin whose card gives the held-out rows
    replay: float = 0.0  # weight of ``replay_data``'s train split, replayed on the pre-trained head of that name
    replay_data: str = "rxn-xtb"  # xTB frames of many reactions (a file: its stem names the head) for the descriptor
    replay_frames: int = 5000
    train_frames: int | None = None  # a seeded subset of that many training frames (nested in N): data learning curves
    exclude: tuple[str, ...] = ()  # whole reactions left out of training and validation: a twin without them
    near_ts_weight: float = 1.0  # loss weight of training frames within NEAR_TS_EV of their reaction's TS (xTB level)
    energy_weight: float = 1.0  # multiple of the trainer's energy prefactors (1: its force-heavy default)
    command: str | None = None  # the command line that ran this recipe (the card's ``reproduce`` chains them)

    def train_config(self) -> "TrainConfig":
        """The trainer's config: the defaults with ``train``'s overrides, energy prefactors × ``energy_weight``."""
        from lam_lab.train.config import TrainConfig

        config = TrainConfig().replace(**self.train)
        if self.energy_weight == 1.0:
            return config
        return config.replace(loss={"pf_e_start": self.energy_weight * config.loss.pf_e_start,
                                    "pf_e_limit": self.energy_weight * config.loss.pf_e_limit})


def without_reactions(data: Dataset, names: tuple[str, ...]) -> Dataset:
    """``data`` less every frame of the reactions ``names``; a name the data lacks is an error (a typo would leave
    the reaction in)."""
    from lam_lab.data.errors import DataError

    present = {f.info.get("reaction") for f in data}
    if unknown := sorted(set(names) - present):
        raise DataError(f"no reaction {', '.join(unknown)} to leave out", source=data.provenance.source or data.name,
                        field="info.reaction")
    return data.where(reaction=[n for n in present if n not in names]) if names else data


@dataclass
class DeltaModelResult:
    """The trained Δ model, its card (dict) and where it was written (None when not installed)."""

    model: Any
    card: dict[str, Any]
    path: Path | None


def train_delta_model(recipe: DeltaRecipe | None = None, out_dir: str | Path | None = "auto", install: bool = False,
                      progress: bool = True, resume: bool = False) -> DeltaModelResult:
    """Fine-tune the Δ model on ``recipe.data``'s train split and write its card (and the model, with ``install``);
    ``resume`` continues an interrupted run in ``out_dir`` from its newest checkpoint."""
    import lam_lab as ll
    from lam_lab.data.io import load_source

    r = recipe or DeltaRecipe()
    data = without_reactions(load_source(r.data), r.exclude)
    train, val, test = data.where(split=list(r.splits)), data.where(split="val"), data.where(split="test")
    train = weight_near_ts(train.subset(r.train_frames, r.seed), r.near_ts_weight)
    replayed = None
    if r.replay:  # its train split only: the held-out reactions stay unseen at every level
        replayed = {Path(r.replay_data).stem: load_source(r.replay_data).where(split="train")}
    t0 = time.perf_counter()
    ft = ll.finetune(train, pretrained=r.pretrained, mode="delta", label=r.label, baseline=r.baseline,
                     preset=r.preset, validation=val, minutes=r.minutes, steps=r.steps, replay=r.replay,
                     replay_data=replayed, config=r.train_config(), out_dir=out_dir,
                     progress=progress, seed=r.seed, resume=resume, **{"replay.frames": r.replay_frames})
    seconds = ft.train.wall_time_s if resume else time.perf_counter() - t0  # the first part's time is in the run
    card = make_delta_card(r, ft, data, len(train), val, test, seconds)
    if ft.path is not None:  # a later stage started from this run's finetuned.pt finds its history here
        from lam_lab.atomic import atomic_write_text
        from lam_lab.json_safe import dumps

        atomic_write_text(ft.path.with_name(RUN_CARD), dumps(card))
    path = install_model(ft.model, card) if install else None
    return DeltaModelResult(ft.model, card, path)


def weight_near_ts(frames: Dataset, weight: float) -> Dataset:
    """The frames, those within ``NEAR_TS_EV`` of their TS (``info['xtb_rel_ts']``, eV) with ``loss_weight`` set."""
    if weight == 1.0:
        return frames
    out = Dataset([f.copy() for f in frames], frames.name, frames.provenance)
    for f in out:
        if abs(f.info.get("xtb_rel_ts", float("inf"))) <= NEAR_TS_EV:
            f.info = {**f.info, "loss_weight": weight}
    return out


def earlier_card(pretrained: str | None) -> dict[str, Any]:
    """The card of the Δ model a recipe starts from: a run folder's (beside its ``finetuned.pt``) or a shipped one's.

    Empty when the start is not a Δ model (``lam-chon-small``, scratch) or left no card."""
    from lam_lab import pretrained as shipped

    if pretrained is None:
        return {}
    beside = Path(pretrained).with_name(RUN_CARD)
    if Path(pretrained).is_file():
        return json.loads(beside.read_text()) if beside.is_file() else {}
    if pretrained not in shipped.available():
        return {}
    card = shipped.card(pretrained, as_dict=True)
    return card if card.get("baseline") else {}


def hardware() -> str:
    """Where training runs, in words (the card's ``hardware``)."""
    import torch

    if torch.cuda.is_available():
        return f"one {torch.cuda.get_device_name()} (CUDA)"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)"


def training_stages(r: DeltaRecipe, ft: Any, seconds: float, before: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages that made this model: those of the Δ model it started from, then this one (steps, lr, data)."""
    cfg = r.train_config()
    warm = 0.05 if cfg.warmup is None and cfg.schedule != "exp" else (cfg.warmup or 0.0)
    n = len(before.get("training", {}).get("stages", []))
    start = f"{r.pretrained} (after stage {n})" if n else str(r.pretrained or "scratch")
    data = [f"{r.data}: {' + '.join(r.splits)} split(s)"]
    if r.replay:
        data.append(f"{r.replay_data} train split replayed on its head (weight {r.replay:g}, {r.replay_frames} frames)")
    if r.near_ts_weight != 1.0:
        data.append(f"frames within {NEAR_TS_EV:g} eV of the TS weighted ×{r.near_ts_weight:g}")
    if r.energy_weight != 1.0:
        data.append(f"energy prefactors ×{r.energy_weight:g}")
    here = {"start": start, "steps": ft.train.steps, "wall_time_s": round(seconds, 1),
            "batch_atoms": cfg.batch_atoms, "lr": cfg.lr, "schedule": f"{cfg.schedule}, {warm:.0%} warm-up",
            "seed": r.seed, "data": "; ".join(data), "hardware": hardware()}
    return [*before.get("training", {}).get("stages", []), here]


def describe(r: DeltaRecipe, stages: list[dict[str, Any]]) -> str:
    """The card's one-paragraph description: what it corrects, where it started, what it was trained on."""
    seen = "test" in r.splits
    origin = stages[0]["start"] if stages else (r.pretrained or "scratch")
    text = (f"Δ-ML correction {r.label} − {r.baseline} for neutral closed-shell C/H/N/O molecules and reactions, "
            f"fine-tuned from {origin} on {r.data} in {len(stages)} stage(s); the calculator adds {r.baseline} back "
            "(tblite at run time).")
    if seen:
        return text + f" Trained on every reaction ({' + '.join(r.splits)} splits): the model to use."
    return text + (f" Trained on {r.data}'s {' + '.join(r.splits)} split only, so its held-out rows measure transfer "
                   f"to reactions it never saw; {NAME} continues it on every reaction (use that one).")


def make_delta_card(r: DeltaRecipe, ft: Any, data: Dataset, n_train: int, val: Dataset, test: Dataset,
                    seconds: float) -> dict[str, Any]:
    """The card: data and splits, held-out reactions next to the baseline alone, in-distribution errors, limits."""
    import torch

    before = earlier_card(r.pretrained)
    stages = training_stages(r, ft, seconds, before)
    reproduce = "; ".join(x for x in (before.get("reproduce"), r.command) if x) or None
    seen = "test" in r.splits
    scores = card_scores(ft.model, r.name, val, test, r.label, r.baseline, seen, r.heldout_from)
    held_source = scores["held_out_model"]
    return {
        "name": r.name, "recipe": {**asdict(r), "preset": str(r.preset)}, "baseline": r.baseline, "label": r.label,
        "description": describe(r, stages),
        "type_map": list(ft.model.type_map), "parameters": sum(p.numel() for p in ft.model.parameters()),
        "data": {"source": r.data, "train": n_train,
                 "val": len(val), "test": len(test),
                 "held_out_reactions": [] if seen else sorted({f.info.get("reaction") for f in test}),
                 "reactions": sorted({str(f.info.get("reaction")) for f in data.where(split=list(r.splits))}),
                 "provenance_notes": build_notes(data)},
        "training": {"steps": sum(st["steps"] for st in stages),
                     "wall_time_s": round(sum(st["wall_time_s"] for st in stages), 1), "seed": r.seed,
                     "hardware": hardware(), "torch": torch.__version__, "heads": ft.heads, "stages": stages},
        **({"reproduce": reproduce} if reproduce else {}),
        **scores,
        "limits": [f"needs {r.baseline} at run time (tblite); C, H, N, O only; neutral closed-shell gas-phase "
                   "molecules of up to ~16 atoms like the training reactions",
                   (f"the held-out rows are reactions {held_source} never saw" + (
                       f" ({held_source} is this recipe on the train split only; this model was trained on those "
                       "reactions too, so on them it is better than the rows say)" if seen else "") +
                    f"; a new kind of chemistry can be worse than {r.baseline} alone: compare with the baseline row "
                    "before trusting it"),
                   "DFT level ωB97X/6-31G(d): a small basis; barriers differ from experiment (see the README table)",
                   labels_limit(data.where(split=list(r.splits)).frames)],
    }


def build_notes(data: Dataset) -> str:
    """What a data set's build made (its provenance notes from the reaction list on: counts, splits, rounds)."""
    notes = data.provenance.notes if data.provenance else ""
    start = notes.find("Reactions:")
    return notes[start:] if start >= 0 else notes[-1500:]


def install_model(model: Any, card: dict[str, Any]) -> Path:
    """Write ``pretrained/files/<name>.pt`` and its card (JSON + Markdown); returns the model path."""
    from lam_lab.atomic import atomic_write_text
    from lam_lab.json_safe import dumps
    from lam_lab.models import save
    from lam_lab.pretrained import FILES

    path = FILES / f"{card['name']}.pt"
    save(model, path)
    atomic_write_text(path.with_suffix(".card.json"), dumps(card))
    atomic_write_text(path.with_suffix(".card.md"), delta_card_markdown(card))
    return path


def training_commands(reproduce: str | None) -> str:
    """A card's ``reproduce`` chain without its ``--install``/``--name`` flags: the same training, shipping nothing, so
    a chain that ships another seed or a committee does not overwrite the shipped models on the way."""
    out = []
    for cmd in (reproduce or "").split("; "):
        words, kept = shlex.split(cmd), []
        for w in words:
            if kept and kept[-1] == "--name":
                kept.pop()
            elif w != "--install":
                kept.append(w)
        out.append(shlex.join(kept))
    return "; ".join(c for c in out if c)


def install_run(run: str | Path, name: str, heldout_from: str | None = None) -> Path:
    """Ship a finished run folder (its ``finetuned.pt`` and card) as ``name``: any seed of a remake, not only the one
    trained with ``--install``. A run trained on the test reactions re-reads its held-out rows from the shipped twin
    ``heldout_from`` (default: the twin its card names), so they are the twin's as shipped now."""
    from lam_lab import pretrained
    from lam_lab.models import load

    run = Path(run)
    card = {**json.loads((run / RUN_CARD).read_text()), "name": name}
    card["recipe"] = {**card.get("recipe", {}), "name": name}
    shipped = ["python", "-m", "lam_lab.pretrained.delta_model", "--install-run", str(run), "--name", name]
    if "test_reactions_trained" in card:
        twin = heldout_from or card["held_out_model"]
        held = pretrained.card(twin, as_dict=True)["held_out"]
        card.update(held_out=held, held_out_model=twin, **held_out_ratios(held))
        shipped += ["--heldout-from", twin]
    else:
        card["held_out_model"] = name
    card["reproduce"] = "; ".join(x for x in (training_commands(card.get("reproduce")), shlex.join(shipped)) if x)
    return install_model(load(run / "finetuned.pt"), card)


def main(argv: list[str] | None = None) -> int:
    """Train (and with --install, ship) the Δ model; prints the card."""
    p = argparse.ArgumentParser(prog="python -m lam_lab.pretrained.delta_model", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="rxn-dft")
    p.add_argument("--minutes", type=float, default=DeltaRecipe.minutes)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--pretrained", default="lam-chon-small", help="start model, or 'none' (Δ from scratch)")
    p.add_argument("--batch-atoms", type=int, default=128, help="atoms per training batch")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the trainer's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when there is one)")
    p.add_argument("--out", default="auto", help="run folder (checkpoints)")
    p.add_argument("--splits", default="train", help="data splits to train on: train, or train,test (every reaction)")
    p.add_argument("--name", default=None, help=f"model name (default {NAME} with test trained on, else {HELDOUT})")
    p.add_argument("--heldout-from", default=HELDOUT, help="with --splits train,test: the twin whose held-out rows "
                   "the card shows")
    p.add_argument("--install", action="store_true", help="write the model and card into the package")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--replay", type=float, default=0.0, help="weight of --replay-data replayed on its pre-trained head")
    p.add_argument("--replay-data", default=DeltaRecipe.replay_data, help="built-in name or file (its train split)")
    p.add_argument("--replay-frames", type=int, default=DeltaRecipe.replay_frames)
    p.add_argument("--train-frames", type=int, default=None, help="train on a seeded subset of this many frames "
                   "(is frames per reaction the limit?)")
    p.add_argument("--exclude", default="", help="reactions left out of training and validation, e.g. a,b")
    p.add_argument("--near-ts-weight", type=float, default=1.0, help=f"loss weight of training frames within "
                   f"{NEAR_TS_EV:g} eV of their TS (xTB level)")
    p.add_argument("--energy-weight", type=float, default=1.0, help="multiple of the trainer's energy prefactors")
    p.add_argument("--install-run", default=None, help="ship this finished run folder as --name (no training)")
    a = p.parse_args(argv)
    if a.install_run:
        print(f"installed {install_run(a.install_run, a.name or HELDOUT, a.heldout_from)}")
        return 0
    train = {"batch_atoms": a.batch_atoms, **({"lr": a.lr} if a.lr else {}),
             **({"device": a.device} if a.device else {})}
    splits = tuple(x for x in a.splits.split(",") if x)
    everything = "test" in splits
    recipe = DeltaRecipe(name=a.name or (NAME if everything else HELDOUT), data=a.data,
                         minutes=None if a.steps else a.minutes, steps=a.steps, seed=a.seed,
                         pretrained=None if a.pretrained == "none" else a.pretrained, train=train, splits=splits,
                         heldout_from=a.heldout_from if everything else None, replay=a.replay,
                         replay_data=a.replay_data, replay_frames=a.replay_frames, train_frames=a.train_frames,
                         near_ts_weight=a.near_ts_weight, energy_weight=a.energy_weight,
                         exclude=tuple(x for x in a.exclude.split(",") if x),
                         command=shlex.join(["python", "-m", "lam_lab.pretrained.delta_model",
                                             *(x for x in (argv if argv is not None else sys.argv[1:])
                                               if x != "--resume")]))
    res = train_delta_model(recipe, out_dir=a.out, install=a.install, resume=a.resume)
    print(delta_card_markdown(res.card))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
