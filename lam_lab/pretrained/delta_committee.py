"""Δ committees: several seeds of the Δ recipe read as one model (their mean; their spread says where to distrust it).

``make_committee(name, members)`` puts trained Δ models (run folders' ``finetuned.pt`` with the run's card beside
it, or shipped names) into one :class:`~lam_lab.committee.Committee`, scores it as a single Δ model is scored
(held-out reactions and the val frames next to GFN2-xTB alone on the same frames) and writes its card;
``install=True`` ships it in ``pretrained/files``. A committee of models trained on every reaction shows the
held-out rows of its train-split twin committee (``heldout_from``)::

    python -m lam_lab.pretrained.delta_committee --name lam-chon-delta-heldout-x3 --install \\
        --members data-build/delta-cpu/stage2/finetuned.pt,data-build/delta-cpu/stage2-s1/finetuned.pt,...
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from lam_lab.pretrained.delta_card import card_scores, delta_card_markdown
from lam_lab.pretrained.delta_model import HELDOUT, build_notes, earlier_card, install_model, training_commands


def make_committee(name: str, members: list[str], heldout_from: str | None = None, install: bool = False,
                   command: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(Committee, card) of the Δ models ``members`` (files or shipped names); with ``install`` it is shipped."""
    from lam_lab import pretrained
    from lam_lab.committee import Committee
    from lam_lab.data.io import load_source
    from lam_lab.models import load

    models = [pretrained.load(m) if m in pretrained.available() and not Path(m).is_file() else load(m)
              for m in members]
    com = Committee(models)
    cards = [earlier_card(m) for m in members]
    missing = [m for m, c in zip(members, cards) if not c.get("baseline")]
    if missing:
        raise ValueError(f"no Δ card beside {missing}: a committee member must be a Δ model trained by "
                         "lam_lab.pretrained.delta_model (its run's delta-card.json) or a shipped one")
    recipes = {(tuple(c["recipe"]["splits"]), c["recipe"]["data"], c["label"], c["baseline"]) for c in cards}
    if len(recipes) > 1:
        raise ValueError(f"committee members were trained on different data or levels: {sorted(recipes)}")
    first = cards[0]
    splits, source = first["recipe"]["splits"], first["recipe"]["data"]
    data = load_source(source)
    seen = "test" in splits
    scores = card_scores(com, name, data.where(split="val"), data.where(split="test"), first["label"],
                         first["baseline"], seen, heldout_from)
    seeds = [c["training"]["seed"] for c in cards]
    card = {**first, **scores, "name": name, "parameters": sum(c["parameters"] for c in cards),
            "data": {**first["data"], "provenance_notes": build_notes(data)},
            "limits": [x.replace(str(first.get("held_out_model")), str(scores["held_out_model"] or name))
                       for x in first["limits"]],
            "description": (f"A committee of {len(members)} Δ models trained alike from seeds {seeds}: energies and "
                            "forces are their mean, their per-atom spread (LAMCalculator's results['force_deviation'],"
                            f" eV/Å) says where not to trust it. Each member: {first['description']}"),
            "members": [{"model": m, "seed": c["training"]["seed"], "reproduce": training_commands(c.get("reproduce"))}
                        for m, c in zip(members, cards)],
            "training": {**first["training"], "steps": sum(c["training"]["steps"] for c in cards),
                         "wall_time_s": round(sum(c["training"]["wall_time_s"] for c in cards), 1), "seed": seeds},
            "reproduce": "; ".join(x for x in (*(training_commands(c.get("reproduce")) for c in cards), command) if x)}
    if not seen:
        card.pop("test_reactions_trained", None)
    if install:
        install_model(com, card)
    return com, card


def main(argv: list[str] | None = None) -> int:
    """Make (and with --install, ship) a Δ committee; prints its card."""
    p = argparse.ArgumentParser(prog="python -m lam_lab.pretrained.delta_committee",
                                description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--members", required=True, help="comma-separated model files (run folders' finetuned.pt) or "
                   "shipped names")
    p.add_argument("--heldout-from", default=None, help=f"for members trained on every reaction: the shipped twin "
                   f"committee whose held-out rows the card shows (e.g. {HELDOUT}-x3)")
    p.add_argument("--install", action="store_true", help="write the committee and its card into the package")
    a = p.parse_args(argv)
    argv_used = argv if argv is not None else sys.argv[1:]
    _, card = make_committee(a.name, [m for m in a.members.split(",") if m], a.heldout_from, a.install,
                             shlex.join(["python", "-m", "lam_lab.pretrained.delta_committee", *argv_used]))
    print(delta_card_markdown(card))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
