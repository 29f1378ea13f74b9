"""Built-in data sets: load the packaged files offline, or rebuild them from the real codes.

    ll.datasets.available()            # ['metals-emt', 'rxn-dft', 'rxn-xtb', 'water-ff'] once built
    ds = ll.datasets.load("rxn-xtb")   # Dataset with provenance
    ll.datasets.build("water-ff", out="water.lamh5", cache_dir="data-build/water-ff")
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from lam_lab.data.dataset import Dataset, Summary
from lam_lab.data.errors import DataError

FILES = Path(__file__).parent / "files"
EXTENSION = ".lamh5"
# name -> builder module (each has NAME, DESCRIPTION, build(ctx) -> Dataset)
BUILDERS: dict[str, str] = {
    "rxn-xtb": "lam_lab.datasets.rxn_xtb",
    "rxn-dft": "lam_lab.datasets.rxn_dft",
    "metals-emt": "lam_lab.datasets.metals_emt",
    "water-ff": "lam_lab.datasets.water_ff",
}
DEFAULT_SEED = 0
# build caches (stages, label caches) live here, relative to the working directory; the DFT label
# cache is committed packed, one compressed file per set (see lam_lab.labelers.cache.pack)
BUILD_DIR = Path("data-build")


@dataclass
class DatasetInfo:
    """What :func:`info` reports: name, description, packaged file (bytes), and the summary when built."""

    name: str
    description: str
    path: Path
    size_bytes: int | None
    summary: Summary | None

    def __str__(self) -> str:
        head = f"{self.name}: {self.description}"
        if self.summary is None:
            return f"{head}\n(not built: run lam_lab.datasets.build({self.name!r}))"
        return f"{head}\nfile {self.path} ({self.size_bytes / 1e6:.2f} MB)\n{self.summary}"


def names() -> list[str]:
    """Every built-in data set name (built or not)."""
    return sorted(BUILDERS)


def path(name: str) -> Path:
    """Packaged file of ``name`` (may not exist yet)."""
    _check(name)
    return FILES / f"{name}{EXTENSION}"


def available() -> list[str]:
    """Names of the built-in data sets whose packaged file is present (loadable offline)."""
    return [n for n in names() if (FILES / f"{n}{EXTENSION}").is_file()]


def _check(name: str) -> None:
    if name not in BUILDERS:
        raise DataError(f"unknown built-in data set {name!r}; available: {', '.join(available()) or 'none built'}"
                        f" (buildable: {', '.join(names())})", field="name")


def _module(name: str):
    _check(name)
    return importlib.import_module(BUILDERS[name])


def load(name: str, split: str | None = None) -> Dataset:
    """The packaged data set ``name`` (read offline from ``lam_lab/datasets/files``); ``split``: only the frames
    with that ``info['split']`` ("train", "val", "test"; a DataError names the splits the set has)."""
    from lam_lab.data.io.lamh5 import read_lamh5

    p = path(name)
    if not p.is_file():
        raise DataError(f"built-in data set {name!r} is not built (no {p.name}); available: "
                        f"{', '.join(available()) or 'none'}; build it with lam_lab.datasets.build({name!r})",
                        source=str(p))
    ds = read_lamh5(p)
    ds.name = name
    if split is None:
        return ds
    part = ds.where(split=split)
    if not len(part):
        have = sorted({str(f.info["split"]) for f in ds if "split" in f.info})
        raise DataError(f"built-in data set {name!r} has no frames with split {split!r}; "
                        + (f"its splits: {', '.join(have)}" if have else "it carries no info['split']"),
                        source=str(p), field="split")
    return part


def default_cache_dir(name: str, quick: bool = False) -> Path:
    """Build-cache folder of ``name`` under :data:`BUILD_DIR`."""
    return BUILD_DIR / (f"{name}-quick" if quick else name)


def info(name: str) -> DatasetInfo:
    """Description, file and summary table of ``name`` (summary None when not built)."""
    mod = _module(name)
    p = path(name)
    if not p.is_file():
        return DatasetInfo(name, mod.DESCRIPTION, p, None, None)
    return DatasetInfo(name, mod.DESCRIPTION, p, p.stat().st_size, load(name).summary())


def build(name: str, out: str | Path | None = None, cache_dir: str | Path | None = None, workers: int | None = None,
          quick: bool = False, progress: bool = True, seed: int = DEFAULT_SEED) -> Dataset:
    """Rebuild ``name`` from the real codes; resumable through ``cache_dir`` (default data-build/<name>).

    out: file to write (lam-h5); None writes the packaged file, except for ``quick`` builds, which
    are only written when ``out`` is given. workers: labelling processes (default 1). quick: a tiny
    variant (minutes or less) for tests and demos.
    """
    from lam_lab.data.io.lamh5 import write_lamh5
    from lam_lab.datasets._stages import BuildContext

    mod = _module(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(name, quick)
    ctx = BuildContext(name, cache, workers, quick, seed, progress)
    t0 = time.perf_counter()
    ds = mod.build(ctx)
    ds.name = name
    ds.validate()
    target = Path(out) if out is not None else (None if quick else path(name))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_lamh5(ds, target)
        ds.provenance.source = str(target)
    ctx.say(f"{len(ds)} frames in {time.perf_counter() - t0:.0f} s" + (f" -> {target}" if target else ""))
    return ds


__all__ = ["available", "names", "load", "info", "build", "path", "DatasetInfo", "BUILDERS"]
