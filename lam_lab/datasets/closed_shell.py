"""Closed-shell DFT labels checked against the functional's lowest solution, frame by frame, for a data set's build.

Restricted (closed-shell) Kohn–Sham labels, as in Transition1x and ANI-1x, describe the restricted surface wherever
the RKS solution is unstable towards UKS (stretched bonds, biradical transition states). The GFN2-xTB HOMO–LUMO gap
screens every frame (milliseconds); each frame under ``SCREEN_BELOW`` eV is checked in DFT
(:func:`lam_lab.labelers.dft.closed_shell_stability`), smallest gap first, and every check is appended to a gzipped
JSON-lines file keyed by geometry (resumable, committed with the build state), keeping the broken-symmetry UKS
energy and forces of each unstable frame. :func:`with_lowest_solution` then labels each frame with the functional's
lowest solution and says which it got in ``info['closed_shell']``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lam_lab.data.frame import Frame, Labels

CHECKS_FILE = "closed-shell-checks.jsonl.gz"  # in a build's stages/ folder
SCREEN_BELOW = 2.5  # eV, the xTB gap under which a frame is checked in DFT
RESTRICTED_SADDLE = "restricted-saddle"  # role of a DFT saddle whose RKS solution is unstable
SPLIT_ORDER = {"test": 0, "val": 1}  # the frames every score is measured on are checked first, then training ones


def geometry_key(frame: Frame) -> str:
    """A frame's identity in the checks file: its elements, charge and positions (Å) as the shipped file stores
    them (float32), so a frame read back from it has the key of the frame the build made."""
    text = f"{list(map(int, frame.numbers))}|{frame.info.get('charge', 0)}|"
    return hashlib.sha1(text.encode() + np.asarray(frame.positions, np.float32).tobytes()).hexdigest()[:20]


def read_checks(path: str | Path) -> dict[str, dict]:
    """Every check in a checks file (one gzip member per appended row), by geometry key; {} when there is none."""
    rows: dict[str, dict] = {}
    path = Path(path)
    if path.exists():
        with gzip.open(path, "rt") as fh:
            for line in fh:
                row = json.loads(line)
                rows[row["key"]] = row
    return rows


def xtb_gap(frame: Frame) -> float:
    """The frame's GFN2-xTB HOMO–LUMO gap (eV); 0 where xTB's own SCF fails (a sign of near-degeneracy: check it)."""
    from ase.calculators.calculator import CalculationFailed

    from lam_lab.labelers.xtb import homo_lumo_gap

    try:
        return homo_lumo_gap(frame)
    except CalculationFailed:
        return 0.0


def check(frames: list[Frame], path: str | Path, labeler=None, say=print) -> list[dict]:
    """Closed-shell stability of each frame at ``labeler``'s level (default ωB97X/6-31G(d)), with the broken-symmetry
    UKS energy (eV) and forces (eV/Å) where unstable and the xTB gap, read from ``path`` where already checked."""
    from lam_lab.labelers.base import LabelingFailed
    from lam_lab.labelers.dft import DFTLabeler, closed_shell_stability

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done, labeler, out = read_checks(path), labeler or DFTLabeler(), []
    for f in frames:
        key = geometry_key(f)
        row = done.get(key)
        if row is None or not (row["stable"] or "uks_forces" in row or "failed" in row):
            t0, row = time.perf_counter(), {"key": key, "reaction": f.info.get("reaction")}
            try:
                st = closed_shell_stability(labeler, f, forces=True)
            except LabelingFailed as err:  # kept, so no worker tries it again; the frame keeps its RKS label
                row.update(stable=None, failed=str(err))
                say(f"{f.info.get('reaction')} ({len(f)} atoms): check FAILED ({err})")
            else:
                row.update(stable=st.stable, uks_below_ev=round(st.uks_below_ev, 5), s2=round(st.s2, 4))
                if st.uks is not None:
                    row.update(uks_energy_ev=st.uks.energy, uks_forces=st.uks.forces.round(6).tolist())
                say(f"{f.info.get('reaction')} ({len(f)} atoms): "
                    + ("stable" if st.stable else f"UNSTABLE, UKS {st.uks_below_ev:.3f} eV below"))
            row.update(xtb_gap_ev=round(xtb_gap(f), 4), seconds=round(time.perf_counter() - t0, 1))
            with gzip.open(path, "at") as fh:  # appended, so a stopped run keeps every check it made
                fh.write(json.dumps(row) + "\n")
            done[key] = row
        out.append(row)
    return out


def to_check(frames: list[Frame], gaps: np.ndarray, below: float = SCREEN_BELOW) -> list[int]:
    """Indices of the frames the screen sends to DFT: xTB gap under ``below`` eV; test, then val, then training
    frames, each smallest gap (the most biradical) first."""
    low = np.flatnonzero(np.asarray(gaps) < below)
    return sorted(map(int, low), key=lambda i: (SPLIT_ORDER.get(frames[i].info.get("split"), 2), gaps[i]))


def restricted_name(label_set: str) -> str:
    """The name a label set's closed-shell labels keep beside the lowest-solution ones: ``wb97x/6-31g*`` →
    ``wb97x-rks/6-31g*``."""
    method, _, basis = label_set.partition("/")
    return f"{method}-rks/{basis}" if basis else f"{method}-rks"


def with_lowest_solution(frames: list[Frame], checks: dict[str, dict], label_set: str, gaps: np.ndarray,
                         below: float = SCREEN_BELOW, keep_restricted: bool = True) -> list[Frame]:
    """``frames`` labelled (``label_set``) with the functional's lowest solution: the broken-symmetry UKS energy and
    forces where the check found RKS unstable, the RKS labels elsewhere. ``info['closed_shell']`` says which:
    ``broken-symmetry`` (``info['uks_below_ev']``: eV below RKS), ``stable`` (checked), ``screened`` (xTB gap ≥
    ``below`` eV, not checked), ``unchecked`` (under ``below`` and not checked yet: its label is RKS),
    ``unstable-unlabelled`` (found unstable by a check that did not keep the broken-symmetry labels: RKS) or
    ``check-failed`` (an SCF of the check did not converge: RKS). A ``ts``
    frame that turns broken-symmetry becomes ``RESTRICTED_SADDLE`` (verified on the restricted surface only) unless
    it was searched on the lowest surface (``info['surface'] == 'lowest'``).
    ``keep_restricted``: every frame also keeps its closed-shell labels as :func:`restricted_name` (``label_set``)."""
    out = []
    for f, gap in zip(frames, gaps):
        c = checks.get(geometry_key(f))
        info = {**f.info, "xtb_gap_ev": round(float(gap), 3)}
        labels = dict(f.labels)
        if keep_restricted:
            labels[restricted_name(label_set)] = f.labels[label_set]
        if c is None:
            info["closed_shell"] = "screened" if gap >= below else "unchecked"
        elif "failed" in c:  # the check's SCF did not converge: the RKS label, said so
            info["closed_shell"] = "check-failed"
        elif c["stable"]:
            info["closed_shell"] = "stable"
        else:
            info["uks_below_ev"] = c["uks_below_ev"]
            if "uks_forces" in c:
                info["closed_shell"] = "broken-symmetry"
                # the first checks kept only how far below RKS (5 decimals); the RKS label is the same SCF's energy
                energy = c.get("uks_energy_ev", labels[label_set].energy - c["uks_below_ev"])
                labels[label_set] = Labels(float(energy), np.asarray(c["uks_forces"], float))
            else:  # checked without its broken-symmetry labels (check() computes them when asked again)
                info["closed_shell"] = "unstable-unlabelled"
            if info.get("role") == "ts" and info.get("surface") != "lowest":  # verified on the restricted one only
                info["role"] = RESTRICTED_SADDLE
        out.append(replace(f, labels=labels, info=info))
    return out


def checks_path(cache_dir: str | Path) -> Path:
    """A build's checks file."""
    return Path(cache_dir) / "stages" / CHECKS_FILE


def check_built(name: str, cache_dir: str | Path, shard: tuple[int, int] = (0, 1), below: float = SCREEN_BELOW,
                say=print) -> None:
    """The DFT checks of the built set ``name``'s frames that the screen sends (every ``shard[1]``-th from the
    ``shard[0]``-th, so workers share them), appended to the build's checks file."""
    from lam_lab import datasets

    check_screened(datasets.load(name).frames, cache_dir, shard, below, say)


def check_screened(frames: list[Frame], cache_dir: str | Path, shard: tuple[int, int] = (0, 1),
                   below: float = SCREEN_BELOW, say=print, labeler=None) -> None:
    """The DFT checks (``labeler``'s level, as :func:`check`) of the ``frames`` that the screen sends, this worker's
    ``shard`` of them (as :func:`check_built`), appended to the build's checks file in ``cache_dir``; the frames
    need no labels."""
    gaps = np.array([xtb_gap(f) for f in frames])
    todo = to_check(frames, gaps, below)
    say(f"{len(todo)} frames under {below} eV (xTB gap); {len(read_checks(checks_path(cache_dir)))} checked so far")
    check([frames[i] for i in todo[shard[0]::shard[1]]], checks_path(cache_dir), labeler, say)


def lowest_solution_note(frames: list[Frame], below: float = SCREEN_BELOW) -> str:
    """One sentence for a data set's notes: how many frames carry which closed-shell kind of label."""
    kinds = {k: sum(f.info.get("closed_shell") == k for f in frames)
             for k in ("broken-symmetry", "stable", "screened", "unchecked", "unstable-unlabelled", "check-failed")}
    return (f"Closed-shell check (xTB gap under {below} eV checked in DFT): {kinds['broken-symmetry']} frames "
            f"broken-symmetry UKS (RKS unstable), {kinds['stable']} checked stable, {kinds['screened']} screened "
            f"(gap ≥ {below} eV), {kinds['unchecked']} not checked yet, {kinds['unstable-unlabelled']} unstable "
            f"without broken-symmetry labels yet and {kinds['check-failed']} whose check did not converge (the last "
            "three keep RKS labels).")


def labels_limit(frames: list[Frame], below: float = SCREEN_BELOW) -> str:
    """The closed-shell line of a Δ model card's limits: which solution the labels of ``frames`` (its training) are."""
    if not any("closed_shell" in f.info for f in frames):
        return ("the labels are closed-shell (RKS): where that solution is unstable (biradical regions: the oxiranes' "
                "ring opening, propyne → allene; an xTB HOMO–LUMO gap under ~2 eV flags them) they, and this model, "
                "sit up to ~3 eV above the functional's lowest (broken-symmetry UKS) solution "
                "(benchmarks/rks_stability.py)")
    return ("the labels are the functional's lowest solution where checked, RKS elsewhere: "
            + lowest_solution_note(frames, below) + f" About 3 % of frames with a gap of {below}–3 eV are RKS-unstable "
            "too (benchmarks/rks_stability.py --sample-screened), so a few near-biradical geometries keep labels up to "
            "~0.1 eV above the lowest solution")


def label_provenance(label_set: str, prov, below: float = SCREEN_BELOW) -> dict:
    """Provenance of the lowest-solution label set and of the closed-shell one kept beside it (its settings as
    labelled: ``lowest_solution`` off)."""
    lowest = replace(prov, settings={**prov.settings, "lowest_solution": True,
                                     "closed_shell_check": f"frames with a GFN2-xTB gap under {below} eV"})
    return {label_set: lowest, restricted_name(label_set): prov}
