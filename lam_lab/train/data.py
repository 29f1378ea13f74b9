"""Training data: tasks, graphs prepared once per frame and reused, seeded samplers, batching."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.train.guard import validate_task_data

if TYPE_CHECKING:
    from lam_lab.nn.batch import Graph
    from lam_lab.potential import Potential


def loss_weight(frame: Any, index: int, source: str | None = None) -> float:
    """The frame's weight in the loss, ``info['loss_weight']`` (default 1): a positive finite number."""
    w = frame.info.get("loss_weight", 1.0)
    try:
        w = float(w)
    except (TypeError, ValueError):
        w = float("nan")
    if not (np.isfinite(w) and w > 0):
        raise DataError(f"loss weight must be a positive number, got {frame.info.get('loss_weight')!r}",
                        source=source, frame=index, field="info.loss_weight")
    return w


class GraphCache:
    """The graphs of one dataset for one model and label set, built on first use and then kept.

    Neighbor lists are the costly part of a graph; building each once means every epoch after the
    first costs only the collate (concatenation) of cached arrays.
    """

    def __init__(self, model: "Potential", dataset: Dataset, label: str | None, keep: bool = True):
        self.model = model
        self.dataset = dataset
        self.label = label
        self.keep = keep
        self._graphs: list[Graph | None] = [None] * len(dataset)

    def __len__(self) -> int:
        return len(self._graphs)

    def __getitem__(self, i: int) -> "Graph":
        g = self._graphs[i]
        if g is None:
            src = self.dataset.provenance.source or self.dataset.name
            frame = self.dataset[i]
            g = _compact(self.model.prepare(frame, label=self.label, index=i, source=src,
                                            weight=loss_weight(frame, i, src)))
            if self.keep:
                self._graphs[i] = g
        return g

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def serves(self, model: "Potential", dataset: Dataset, label: str | None, keep: bool) -> bool:
        """Whether these graphs are ``model``'s of ``dataset``: the same frames (objects, in order) and label,
        the same type map and cutoffs (all a graph depends on), and the same ``keep``."""
        return (self.label == label and self.keep == keep and len(self.dataset) == len(dataset)
                and all(a is b for a, b in zip(self.dataset.frames, dataset.frames))
                and list(self.model.type_map) == list(model.type_map) and self.model.cutoffs() == model.cutoffs())

    def nbytes(self) -> int:
        """Memory held by the cached neighbor lists (bytes)."""
        return sum(a.nbytes for g in self._graphs if g is not None for nl in g.neighbors
                   for a in (nl.index, nl.shift, nl.mask, nl.distance))

    def sizes(self) -> np.ndarray:
        """Atoms per frame."""
        return np.array([len(f) for f in self.dataset], dtype=np.int64)


def graph_cache(model: "Potential", dataset: Dataset, label: str | None, keep: bool = True,
                given: GraphCache | None = None) -> GraphCache:
    """The graphs of ``dataset`` for ``model``: ``given`` (built earlier, e.g. while fine-tuning ranked the
    pre-trained heads) when it :meth:`~GraphCache.serves` them, else a new cache."""
    if given is not None and given.serves(model, dataset, label, keep):
        given.model = model  # the same graphs; do not keep the model that built them alive
        return given
    return GraphCache(model, dataset, label, keep=keep)


def _compact(graph: "Graph") -> "Graph":
    """The same graph with neighbor lists in small dtypes (≈3× less memory; collate upcasts them).

    Indices fit int32, integer cell shifts int8, and distances are only needed while building.
    """
    import dataclasses

    lists = [
        dataclasses.replace(nl, index=nl.index.astype(np.int32), shift=nl.shift.astype(np.int8),
                            distance=nl.distance.astype(np.float32))
        if np.abs(nl.shift).max(initial=0) < 128 else nl
        for nl in graph.neighbors
    ]
    return dataclasses.replace(graph, neighbors=lists)


@dataclass
class Task:
    """One training task (Eq. 42): a dataset with one label set, trained through one head."""

    name: str
    head: str
    label: str
    train: Dataset
    weight: float = 1.0
    validation: Dataset | None = None
    graphs: GraphCache | None = None  # set by the Trainer; one given to train() is reused when it serves
    val_graphs: GraphCache | None = None
    source_index: list[int] | None = None  # index in the caller's Dataset of each training frame (error messages)


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(map(str, known))}"


def as_datasets(source: Any) -> Any:
    """``source`` with every data file path or built-in name (top level or a dict's value) read by the one
    resolver, :func:`lam_lab.data.io.load_source`; Datasets and anything else pass through unchanged."""
    from lam_lab.data.io import load_source

    if isinstance(source, (str, os.PathLike)):
        return load_source(source)
    if isinstance(source, Mapping):
        return {k: load_source(v) if isinstance(v, (str, os.PathLike)) else v for k, v in source.items()}
    return source


def resolve_tasks(
    model: "Potential",
    datasets: Dataset | str | os.PathLike | Mapping[str, Dataset | str | os.PathLike],
    weights: Mapping[str, float] | None = None,
    labels: str | Mapping[str, str] | None = None,
    heads: str | Mapping[str, str] | None = None,
    validation: Dataset | str | os.PathLike | Mapping[str, Dataset | str | os.PathLike] | None = None,
) -> list[Task]:
    """Tasks from the arguments of :func:`lam_lab.train`, every name and label checked up front.

    A plain Dataset (or a data file path or built-in name) is a single task trained through head
    ``"default"`` (or the model's only head); a dict gives one task per entry, each through the head of
    the same name (created by the trainer if the model lacks it). ``weights``/``labels``/``heads``/
    ``validation`` keys must be task names.
    """
    datasets, validation = as_datasets(datasets), as_datasets(validation)
    single = isinstance(datasets, Dataset)
    if single:
        only = model.heads[0] if len(model.heads) == 1 and "default" not in model.heads else "default"
        head = heads if isinstance(heads, str) else only
        name = head
        datasets = {name: datasets}
        labels = {name: labels} if isinstance(labels, str) else labels
        heads = {name: head}
        validation = {name: validation} if isinstance(validation, Dataset) else validation
    if not isinstance(datasets, Mapping) or not datasets:
        raise DataError("train() needs a Dataset (or a data file path or built-in name) or a non-empty dict of task "
                        "name -> Dataset")
    names = list(datasets)
    for arg, mapping in (("weights", weights), ("labels", labels), ("heads", heads), ("validation", validation)):
        if mapping is None or isinstance(mapping, str):
            continue
        for key in mapping:
            if key not in datasets:
                raise DataError(f"no task named {key!r}" + _suggest(str(key), names), field=f"{arg}.{key}")
    tasks = []
    for name, ds in datasets.items():
        if not isinstance(ds, Dataset):
            raise DataError(f"task {name!r}: expected a lam_lab Dataset, file path or built-in name, got "
                            f"{type(ds).__name__}", field=f"datasets.{name}")
        label = labels if isinstance(labels, str) else (labels or {}).get(name) or ds.default_label()
        if label not in ds.label_sets:
            raise DataError(f"label set {label!r} not in dataset {ds.name!r}" + _suggest(label, ds.label_sets),
                            field=f"labels.{name}")
        validate_task_data(name, ds, label)  # as ll.data.read does for files: NaN labels never reach the loss
        train_ds = ds.with_label(label)
        if not len(train_ds):
            raise DataError(f"task {name!r}: no frame carries label {label!r}", field=f"datasets.{name}")
        val = (validation or {}).get(name) if not isinstance(validation, Dataset) else validation
        if val is not None:
            validate_task_data(name, val, label, role="validation")
            val = val.with_label(label)
        weight = float((weights or {}).get(name, 1.0))
        if not weight > 0:
            raise DataError(f"task weight must be > 0, got {weight}", field=f"weights.{name}")
        head = heads if isinstance(heads, str) else (heads or {}).get(name, name)
        _check_elements(model, train_ds, name)
        tasks.append(Task(name, head, label, train_ds, weight, val if val is not None and len(val) else None,
                          source_index=[i for i, f in enumerate(ds) if label in f.labels]))
    return tasks


def _check_elements(model: "Potential", ds: Dataset, task: str) -> None:
    """DataError naming the first frame whose element the model's type map lacks."""
    known = set(model.type_map)
    from ase.data import chemical_symbols

    for i, frame in enumerate(ds):
        missing = sorted({chemical_symbols[z] for z in np.unique(frame.numbers)} - known)
        if missing:
            raise DataError(
                f"task {task!r}: elements {missing} are not in the model's type map {list(model.type_map)}",
                source=ds.provenance.source or ds.name, frame=i, field="numbers",
            )


class TaskSampler:
    """The task of each step, drawn with replacement with probability ∝ weight (Eq. 44).

    The draw depends only on (seed, step), so a resumed run sees the same task sequence and every
    DDP rank picks the same task (and head) at the same step.
    """

    def __init__(self, weights: Sequence[float], seed: int):
        w = np.asarray(weights, dtype=float)
        self.p = w / w.sum()
        self.seed = seed

    def task_at(self, step: int) -> int:
        """Index of the task trained at ``step``."""
        if len(self.p) == 1:
            return 0
        return int(np.random.default_rng([self.seed, 1, step]).choice(len(self.p), p=self.p))


class FrameSampler:
    """Shuffled epochs over one task's frames; batches hold ``batch_size`` frames or ≥ ``batch_atoms`` atoms.

    Epoch ``e`` uses the permutation seeded by (seed, task, e), so the state is two integers
    (epoch, position) and resuming continues the same order. Under DDP every rank draws the same
    frames and keeps every ``world``-th one, so ranks never see the same frame in one step.
    """

    def __init__(self, sizes: np.ndarray, seed: int, task_index: int, batch_size: int = 1,
                 batch_atoms: int | None = None, rank: int = 0, world: int = 1):
        self.sizes = np.asarray(sizes)
        self.seed, self.task_index = seed, task_index
        self.batch_size, self.batch_atoms = batch_size, batch_atoms
        self.rank, self.world = rank, world
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 2, self.task_index, epoch]).permutation(len(self.sizes))

    def _draw(self) -> int:
        if self.pos >= len(self._perm):
            self.epoch += 1
            self.pos = 0
            self._perm = self._permutation(self.epoch)
        i = int(self._perm[self.pos])
        self.pos += 1
        return i

    def next(self) -> list[int]:
        """Frame indices of this rank's part of the next batch."""
        mine: list[list[int]] = [[] for _ in range(self.world)]
        atoms = np.zeros(self.world, dtype=np.int64)
        k = 0
        while True:
            if self.batch_atoms is None:
                if all(len(m) >= self.batch_size for m in mine):
                    break
            elif all(len(m) >= 1 for m in mine) and atoms.min() >= self.batch_atoms:
                break
            i = self._draw()
            r = k % self.world if self.batch_atoms is None else int(np.argmin(atoms))
            mine[r].append(i)
            atoms[r] += self.sizes[i]
            k += 1
        return mine[self.rank]

    def state_dict(self) -> dict[str, int]:
        """(epoch, position) — all it takes to continue the same order."""
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved (epoch, position)."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)


def split_validation(ds: Dataset, spec: float | str | None, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """(train, validation) from a DataSpec ``validation`` entry: a fraction to split off, or None."""
    if spec is None:
        return ds, None
    frac = float(spec)
    if not 0 < frac < 1:
        raise DataError(f"validation fraction must be in (0, 1), got {frac}", field="validation")
    train, val = ds.split((1 - frac, frac), seed=seed)
    return train, val
