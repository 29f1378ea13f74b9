"""The Δ models' cards: per-reaction errors next to the baseline alone, the held-out ratios, and the Markdown card.

Every figure pairs the Δ model (baseline added back) with the baseline alone on the same frames against the label:
forces in meV/Å, energies in meV/atom with per-element offsets removed, barriers in eV at the DFT TS.
"""

from __future__ import annotations

from typing import Any

from lam_lab.data.dataset import Dataset

HIGH, BASE = "wb97x/6-31g*", "gfn2-xtb"


def reaction_rows(model: Any, frames: Dataset, label: str = HIGH, baseline: str = BASE) -> list[dict[str, Any]]:
    """Per reaction: the Δ model (or a :class:`~lam_lab.committee.Committee` of them; baseline added back) and
    the baseline alone vs ``label`` on the same frames."""
    from lam_lab.evaluation import predict, reference, score

    rows = []
    for name in sorted({f.info.get("reaction", "?") for f in frames}):
        fr = list(frames.where(reaction=name)) if name != "?" else list(frames)
        m = score(predict(model, fr, baseline=baseline), fr, label)
        x = score(reference(fr, baseline), fr, label)
        rows.append({"reaction": name, "frames": len(fr),
                     "model_force_rmse_mev_per_A": m.force_rmse_mev_per_A,
                     "baseline_force_rmse_mev_per_A": x.force_rmse_mev_per_A,
                     "model_energy_rmse_offset_removed_mev_per_atom": m.energy_rmse_offset_removed_mev_per_atom,
                     "baseline_energy_rmse_offset_removed_mev_per_atom": x.energy_rmse_offset_removed_mev_per_atom,
                     "barrier_ref_ev": m.barrier_ref_ev, "model_barrier_err_ev": m.barrier_err_ev,
                     "baseline_barrier_err_ev": x.barrier_err_ev})
    return rows


FIRST_VAL = "validation frames of the first selection (the set before its extra rounds)"


def card_scores(model: Any, name: str, val: Dataset, test: Dataset, label: str = HIGH, baseline: str = BASE,
                trained_on_test: bool = False, heldout_from: str | None = None) -> dict[str, Any]:
    """A card's figures: held-out reactions and the val frames next to the baseline alone, and the ratios.

    A model trained on the test reactions has its rows there in-sample (``test_reactions_trained``); its
    held-out rows are those of the twin ``heldout_from``, which never saw them (none without a twin)."""
    held = reaction_rows(model, test, label, baseline)
    out: dict[str, Any] = {"held_out_model": name,
                           "in_distribution": reaction_rows(model, one_group(val), label, baseline)[0]}
    first = first_selection(val)
    if 0 < len(first) < len(val):  # comparable with models of the set before its extra rounds
        out["in_distribution_first_selection"] = reaction_rows(model, one_group(first, FIRST_VAL), label, baseline)[0]
    if trained_on_test:
        from lam_lab import pretrained

        out.update(held_out_model=heldout_from, test_reactions_trained=held)
        held = pretrained.card(heldout_from, as_dict=True)["held_out"] if heldout_from else []
    return {"held_out": held, **out, **held_out_ratios(held)}


def _known(x: float | None) -> bool:
    """A figure that was measured: not NaN in memory, not null as a card's JSON stores NaN."""
    return x is not None and x == x


def held_out_ratios(held: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean over held-out reactions of model/baseline error (forces, barriers), and the summed ratios."""
    ratios = [h["model_force_rmse_mev_per_A"] / h["baseline_force_rmse_mev_per_A"] for h in held]
    barrier = [h["model_barrier_err_ev"] / h["baseline_barrier_err_ev"] for h in held
               if _known(h["model_barrier_err_ev"]) and _known(h["baseline_barrier_err_ev"])
               and h["baseline_barrier_err_ev"] > 0]
    return {"force_rmse_over_baseline": sum(ratios) / len(ratios) if ratios else None,
            "barrier_err_over_baseline": sum(barrier) / len(barrier) if barrier else None, **summed_ratios(held)}


def summed_ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Σ model error / Σ baseline error over reactions (forces, barriers): robust where the baseline's is ~0."""
    def ratio(m: str, x: str) -> float | None:
        pairs = [(r[m], r[x]) for r in rows if _known(r[m]) and _known(r[x])]
        return sum(a for a, _ in pairs) / sum(b for _, b in pairs) if pairs and sum(b for _, b in pairs) else None

    return {"force_rmse_sum_over_baseline": ratio("model_force_rmse_mev_per_A", "baseline_force_rmse_mev_per_A"),
            "barrier_err_sum_over_baseline": ratio("model_barrier_err_ev", "baseline_barrier_err_ev")}


def first_selection(frames: Dataset) -> Dataset:
    """The frames of a reaction set's first selection (none of its extra rounds, ``info['extra_round']``)."""
    return Dataset([f for f in frames if "extra_round" not in f.info], frames.name)


def selection_parts(frames: Dataset) -> dict[str, Dataset]:
    """A reaction set's frames as its first selection and its extra rounds (hotter, farther from the path), each part
    that has frames; empty when no frame is of an extra round (nothing to tell apart)."""
    rounds = Dataset([f for f in frames if "extra_round" in f.info], frames.name)
    if not len(rounds):
        return {}
    return {tag: part for tag, part in (("first_selection", first_selection(frames)), ("extra_rounds", rounds))
            if len(part)}


def one_group(frames: Dataset, tag: str = "validation frames of the training reactions") -> Dataset:
    """The frames with one shared ``reaction`` tag, so :func:`reaction_rows` scores them together."""
    out = Dataset([f.copy() for f in frames], frames.name)
    for f in out:
        f.info = {**f.info, "reaction": tag}
        f.info.pop("role", None)  # one barrier per group would mix reactions
    return out


def _f(x: Any, fmt: str) -> str:
    return "–" if x is None or x != x else format(x, fmt)


def _error_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| reaction | frames | F RMSE model | F RMSE xTB | E RMSE model | E RMSE xTB | barrier "
             "| |Δ barrier| model | |Δ barrier| xTB |", "|---|---|---|---|---|---|---|---|---|"]
    for h in rows:
        lines.append(f"| {h['reaction']} | {h['frames']} | {_f(h['model_force_rmse_mev_per_A'], '.0f')} | "
                     f"{_f(h['baseline_force_rmse_mev_per_A'], '.0f')} | "
                     f"{_f(h['model_energy_rmse_offset_removed_mev_per_atom'], '.1f')} | "
                     f"{_f(h['baseline_energy_rmse_offset_removed_mev_per_atom'], '.1f')} | "
                     f"{_f(h['barrier_ref_ev'], '.3f')} | {_f(h['model_barrier_err_ev'], '.3f')} | "
                     f"{_f(h['baseline_barrier_err_ev'], '.3f')} |")
    return lines


def delta_card_markdown(card: dict[str, Any]) -> str:
    """The Δ model's card as Markdown (``ll.pretrained.card(name)``)."""
    d, t = card["data"], card["training"]
    lines = [f"# Model card: {card['name']}", "", card["description"], "",
             f"- {card['parameters']:,} parameters; elements {', '.join(card['type_map'])}",
             f"- data: {d['source']}: {d['train']} train / {d['val']} val / {d['test']} test frames; held-out "
             f"(never seen) reactions: {', '.join(d['held_out_reactions']) or 'none (trained on every reaction)'}",
             f"- training: {t['steps']} steps in {t['wall_time_s'] / 60:.0f} min on {t['hardware']} "
             f"(torch {t['torch']}, seed {t['seed']})"]
    lines += [f"  - stage {i}: from {st['start']}, {st['steps']} steps, batch {st['batch_atoms']} atoms, peak lr "
              f"{st['lr']:g}" + (f", {st['data']}" if st.get("data") else "") + (f", {st['hardware']}" if st.get(
                  "hardware") else "") for i, st in enumerate(t.get("stages", []), 1)]
    lines += [f"- chosen by: {t['selection']}"] if t.get("selection") else []
    lines += [f"- committee member {i}: {m['model']} (seed {m['seed']}), each trained as above"
              for i, m in enumerate(card.get("members", []))]
    lines += [f"- reproduce: `{card['reproduce']}`"] if card.get("reproduce") else []
    own = card.get("held_out_model", card["name"])
    title = ("the model next to" if own == card["name"] else f"its twin {own} (this recipe, train split only) next to")
    lines += ["", f"## Held-out reactions: {title} {card['baseline']} alone (same frames, vs {card['label']})", ""]
    lines += _error_table(card["held_out"] + [card["in_distribution"]] + (
        [card["in_distribution_first_selection"]] if card.get("in_distribution_first_selection") else []))
    if card.get("test_reactions_trained"):
        lines += ["", "## The same reactions in this model's training data (in-sample, not a held-out figure)", ""]
        lines += _error_table(card["test_reactions_trained"])
    lines += ["", "F in meV/Å, E in meV/atom with per-element offsets removed, barriers in eV at the DFT TS. "
              f"Mean model/{card['baseline']} over held-out reactions: forces "
              f"{_f(card['force_rmse_over_baseline'], '.2f')}, "
              f"barriers {_f(card['barrier_err_over_baseline'], '.2f')}; ratio of the summed errors: forces "
              f"{_f(card.get('force_rmse_sum_over_baseline'), '.2f')}, barriers "
              f"{_f(card.get('barrier_err_sum_over_baseline'), '.2f')} (the mean of ratios is dominated by "
              "reactions whose baseline barrier is already within a few hundredths of an eV).",
              "", "## Known limits", ""]
    lines += [f"- {x}" for x in card["limits"]]
    return "\n".join(lines) + "\n"
