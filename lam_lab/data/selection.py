"""Splits (random, by group) and farthest-point selection on a structural fingerprint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from lam_lab.data.dataset import Dataset
    from lam_lab.data.frame import Frame

_GRID = np.linspace(0.7, 6.0, 24)  # Å; radial grid of the fingerprint
_WIDTH = 0.25  # Å; Gaussian width of each radial bin


def _counts(parts_total: int, fractions: Sequence[float]) -> list[int]:
    fr = np.asarray(fractions, dtype=float)
    if np.any(fr < 0) or fr.sum() <= 0:
        raise ValueError(f"split fractions must be non-negative and sum > 0, got {list(fractions)}")
    fr = fr / fr.sum()
    counts = np.floor(fr * parts_total).astype(int)
    for k in np.argsort(-(fr * parts_total - counts))[: parts_total - counts.sum()]:
        counts[k] += 1
    return counts.tolist()


def split_indices(ds: "Dataset", fractions: Sequence[float], seed: int = 0, by: str | None = None) -> list[list[int]]:
    """Index lists for a seeded random split; with ``by`` (an info key or "formula") groups stay whole."""
    rng = np.random.default_rng(seed)
    if by is None:
        order = rng.permutation(len(ds)).tolist()
        out, start = [], 0
        for c in _counts(len(ds), fractions):
            out.append(sorted(order[start : start + c]))
            start += c
        return out
    groups = ds.groups(by)
    names = sorted(groups)
    names = [names[i] for i in rng.permutation(len(names))]
    out, start = [], 0
    for c in _counts(len(names), fractions):
        out.append(sorted(i for g in names[start : start + c] for i in groups[g]))
        start += c
    return out


def fingerprint(frame: "Frame") -> np.ndarray:
    """Rotation/permutation-invariant fingerprint: per element-pair Gaussian-smeared distance histogram."""
    from ase.geometry import get_distances

    z = frame.numbers
    cell = frame.cell if frame.is_periodic else None
    _, d = get_distances(frame.positions, cell=cell, pbc=frame.pbc if cell is not None else None)
    iu = np.triu_indices(len(z), k=1)
    d = d[iu]
    # elements bucketed H / C / N / O / other so fingerprints of different chemistries stay comparable
    bucket = np.select([z == 1, z == 6, z == 7, z == 8], [0, 1, 2, 3], 4)
    a, b = np.minimum(bucket[iu[0]], bucket[iu[1]]), np.maximum(bucket[iu[0]], bucket[iu[1]])
    pair = a * 5 + b
    g = np.exp(-(((d[:, None] - _GRID[None]) / _WIDTH) ** 2)) * (d[:, None] < _GRID[-1] + 1.0)
    fp = np.zeros((25, len(_GRID)))
    np.add.at(fp, pair, g)
    return (fp / max(len(z), 1)).ravel()


def farthest_point_indices(ds: "Dataset", n: int, seed: int = 0) -> list[int]:
    """Greedy farthest-point sampling of ``n`` frames in fingerprint space (first pick seeded)."""
    if n >= len(ds):
        return list(range(len(ds)))
    x = np.stack([fingerprint(f) for f in ds])
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(ds)))]
    dist = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(n - 1):
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(x - x[k], axis=1))
    return sorted(chosen)


def farthest_point_continue(ds: "Dataset", chosen: Sequence[int], n: int,
                            among: Sequence[int] | None = None) -> list[int]:
    """``n`` more frames of ``ds`` (from ``among``, default all not chosen), each in turn the farthest in fingerprint
    space from ``chosen`` and the ones picked before it; greedy order, so a prefix of the picks for ``n`` is the
    picks for a smaller ``n``."""
    chosen = [int(i) for i in chosen]
    if not chosen:
        raise ValueError("farthest_point_continue needs at least one chosen frame to continue from")
    taken = set(chosen)
    pool = [i for i in (range(len(ds)) if among is None else among) if i not in taken]
    x = np.stack([fingerprint(ds[i]) for i in range(len(ds))])
    dist = np.min(np.linalg.norm(x[pool][:, None] - x[chosen][None], axis=2), axis=1) if pool else np.zeros(0)
    picks: list[int] = []
    for _ in range(min(n, len(pool))):
        k = int(np.argmax(dist))
        picks.append(pool[k])
        dist = np.minimum(dist, np.linalg.norm(x[pool] - x[pool[k]], axis=1))
        dist[k] = -1.0
    return picks


def barrier_pairs(frames: Sequence["Frame"]) -> list[tuple[int, int]]:
    """(reactant, ts) indices of every reaction in ``frames``, in the order of their ``ts`` frames: each reaction's
    first ``ts`` and a reactant of the same ``info['reaction']``, from the same ``info['source']`` when there is one
    (a DFT saddle pairs with the DFT minimum, not with the GFN2-xTB minimum labelled at DFT)."""
    out, seen = [], set()
    for ts, f in enumerate(frames):
        name = f.info.get("reaction")
        if f.info.get("role") != "ts" or name in seen:
            continue
        seen.add(name)
        rs = [i for i, g in enumerate(frames) if g.info.get("role") == "reactant" and g.info.get("reaction") == name]
        if rs:
            out.append((next((i for i in rs if frames[i].info.get("source") == f.info.get("source")), rs[0]), ts))
    return out


def barrier_frames(frames: Sequence["Frame"]) -> tuple[int, int] | None:
    """Indices (reactant, ts) of the first reaction of :func:`barrier_pairs`; None when no reaction has both."""
    pairs = barrier_pairs(frames)
    return pairs[0] if pairs else None


def holdout_split(ds: "Dataset", seed: int = 0, max_test: int | None = None) -> tuple["Dataset", "Dataset"]:
    """(pool, test): the frames marked info['split'] == "test" as test if the set has any, else a seeded 80/20
    split; ``max_test`` caps the test part (a seeded subset, in order, that keeps the first reactant/TS pair
    of :func:`barrier_frames` so a barrier stays measurable)."""
    test = ds.where(split="test")
    if len(test):
        pool = ds[[i for i, f in enumerate(ds) if f.info.get("split") != "test"]]
    else:
        pool, test = ds.split((0.8, 0.2), seed=seed)
    if max_test is not None and len(test) > max_test:
        pair = list(barrier_frames(list(test)) or ())
        rest = [i for i in range(len(test)) if i not in pair]
        picked = [rest[j] for j in subset_indices(len(rest), max(max_test - len(pair), 0), seed)]
        test = test[sorted(pair + picked)]
    return pool, test


def subset_indices(n_total: int, n: int, seed: int = 0) -> list[int]:
    """The one frame-picking rule: the first ``n`` of a seeded permutation of ``n_total``, sorted (nested in ``n``)."""
    n = int(n)
    if not 0 <= n <= n_total:
        raise ValueError(f"cannot pick {n} of {n_total} frames")
    return sorted(int(i) for i in np.random.default_rng(seed).permutation(n_total)[:n])


def where_indices(frames: Sequence["Frame"], info: dict) -> list[int]:
    """Indices of frames whose ``info[key]`` equals each value given (a list/tuple/set value: any of them)."""
    def ok(value: object, want: object) -> bool:
        return value in want if isinstance(want, (list, tuple, set, frozenset)) else value == want

    return [i for i, f in enumerate(frames) if all(ok(f.info.get(k), v) for k, v in info.items())]
