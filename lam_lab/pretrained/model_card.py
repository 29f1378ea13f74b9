"""Model cards: what a pre-trained model was trained on, how long, how good it is, and where it stops."""

from __future__ import annotations

import copy
import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lam_lab.atomic import atomic_write_text

if TYPE_CHECKING:
    from lam_lab.pretrained.recipe import Recipe, TaskSplit
    from lam_lab.train.trainer import TrainResult

LIMITS = (
    "Elements: only those of the type map; any other element is refused with an error.",
    "Chemistry: closed-shell neutral organic molecules of H/C/N/O with up to ~16 atoms, their unimolecular "
    "reactions and pericyclic additions; no ions, radicals' spin states, solvents other than water, or "
    "long-range electrostatics/dispersion beyond the 6 Å cutoff.",
    "Labels: the organic heads learn GFN2-xTB, the metals head EMT, the water head a flexible TIP3P force "
    "field; none is DFT. Use it as a starting point for fine-tuning or Δ-learning, not as a DFT surrogate.",
    "Size: trained on a few thousand frames for a CPU-sized budget; the paper's DPA-2 used millions of "
    "frames and GPU-days.",
)


def metrics_rows(table: Any) -> list[dict[str, Any]]:
    """Plain rows (E meV/atom, F meV/Å, with label standard deviations) of a MetricsTable."""
    return [{"set": r.name, "head": r.head, "label": r.label, "frames": r.n_frames,
             "e_rmse": r.e_rmse, "e_mae": r.e_mae, "e_std": r.e_std,
             "f_rmse": r.f_rmse, "f_mae": r.f_mae, "f_std": r.f_std} for r in table.rows]


def zero_shot(model: Any, split: "TaskSplit", task: str) -> list[dict[str, Any]]:
    """Each head on a task's test split against its other label sets, energy bias refit on the train split (Eq. 6)."""
    from lam_lab.train.metrics import evaluate

    rows = []
    for label in split.test.label_sets:
        if label == split.label:
            continue
        train = split.train.with_label(label)
        for head in model.heads:
            m = copy.deepcopy(model)
            m.fit_energy_bias(list(train), head, label)
            table = evaluate(m, {f"{task}-test": split.test.with_label(label)}, head=head, label=label, parity=False)
            rows += [{**r, "bias_refit_on": f"{task} train ({len(train)} frames)"} for r in metrics_rows(table)]
    return rows


def make_card(recipe: "Recipe", result: "TrainResult", splits: dict[str, "TaskSplit"],
              session_s: float) -> dict[str, Any]:
    """The card of a finished pre-training run: data, training, test metrics, zero-shot table, limits."""
    import torch

    from lam_lab.pretrained.recipe import hardware
    from lam_lab.train.metrics import evaluate

    model = result.model
    tests = {k: s.test for k, s in splits.items() if len(s.test)}
    table = evaluate(model, tests, head={k: k for k in tests}, label={k: splits[k].label for k in tests}, parity=False)
    data = []
    for name, spec in recipe.tasks.items():
        s = splits[name]
        lp = s.train.provenance.labels.get(s.label)
        software = f" ({lp.software} {lp.version or ''})".replace(" )", ")") if lp and lp.software else ""
        method = s.label if lp is None else f"{lp.method}" + (f"/{lp.basis}" if lp.basis else "") + software
        data.append({"task": name, "head": name, "source": spec.source, "label": s.label,
                     "method": method,
                     "weight": spec.weight, "excluded": spec.exclude, "split": spec.split,
                     "frames": {"train": len(s.train), "val": len(s.val), "test": len(s.test)},
                     "elements": s.train.elements})
    zs = [row for name, s in splits.items() if s.test.label_sets != [s.label] for row in zero_shot(model, s, name)]
    return {
        "name": recipe.name,
        "description": recipe.description.strip(),
        "preset": recipe.model.preset,
        "type_map": list(model.type_map),
        "heads": list(model.heads),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": data,
        "training": {"steps": result.steps, "wall_time_s": round(result.wall_time_s, 1),
                     "this_session_s": round(session_s, 1), "hardware": hardware(), "torch": torch.__version__,
                     "seed": recipe.train.seed, "lr": recipe.train.lr, "schedule": recipe.train.schedule,
                     "batch_atoms": recipe.train.batch_atoms,
                     "budget": {"steps": recipe.train.steps, "minutes": recipe.train.minutes},
                     "stopped_early": result.stopped,
                     "date": _dt.date.today().isoformat()},
        "test": metrics_rows(table),
        "test_warmse": {"e": table.warmse_e, "f": table.warmse_f},
        "zero_shot": zs,
        "limits": list(LIMITS),
        "units": "energies meV/atom, forces meV/Å",
    }


def write_card(card: dict[str, Any], path: str | Path) -> Path:
    """Write the card as JSON and as Markdown beside it (``.card.md``); returns the JSON path."""
    from lam_lab.json_safe import dumps

    path = Path(path)
    atomic_write_text(path, dumps(card))
    atomic_write_text(path.with_suffix(".md"), card_markdown(card))
    return path


def _table(rows: list[dict[str, Any]], extra: str | None = None) -> list[str]:
    head = ("| set | head | label | frames | E RMSE | E MAE | E std | F RMSE | F MAE | F std |"
            + (f" {extra} |" if extra else ""))
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        out.append(f"| {r['set']} | {r['head']} | {r['label']} | {r['frames']} | {r['e_rmse']:.1f} | "
                   f"{r['e_mae']:.1f} | "
                   f"{r['e_std']:.0f} | {r['f_rmse']:.0f} | {r['f_mae']:.0f} | {r['f_std']:.0f} |"
                   + (f" {r.get(extra, '')} |" if extra else ""))
    return out


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (what ``ll.pretrained.card(name)`` prints)."""
    t = card["training"]
    lines = [f"# Model card: {card['name']}", "", card["description"], "",
             f"- architecture: `{card['preset']}` (DPA-2, seed 001), {card['parameters']:,} parameters",
             f"- elements (type map): {', '.join(card['type_map'])}", f"- heads: {', '.join(card['heads'])}",
             f"- training: {t['steps']} steps in {t['wall_time_s'] / 60:.0f} min on {t['hardware']} "
             f"(torch {t['torch']}, seed {t['seed']}, {t['date']})", "",
             "## Data", "", "| task / head | source | label (method) | weight | train | val | test | left out |",
             "|---|---|---|---|---|---|---|---|"]
    for d in card["data"]:
        f = d["frames"]
        lines.append(f"| {d['task']} | {d['source']} | {d['method']} | {d['weight']} | {f['train']} | {f['val']} | "
                     f"{f['test']} | {d['excluded'] or '-'} |")
    lines += ["", "## Test errors (E meV/atom, F meV/Å; std = the labels' standard deviation)", ""]
    lines += _table(card["test"])
    if card["zero_shot"]:
        lines += ["", "## Zero-shot on the held-out reaction (energy bias refit only, Eq. 6)", ""]
        lines += _table(card["zero_shot"], "bias_refit_on")
    lines += ["", "## Known limits", ""] + [f"- {x}" for x in card["limits"]]
    return "\n".join(lines) + "\n"
