"""``python -m lam_lab.datasets build|info NAME``: the data-set verbs without the full CLI."""

from __future__ import annotations

import argparse

from lam_lab import datasets


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and build or describe a built-in data set."""
    p = argparse.ArgumentParser(prog="python -m lam_lab.datasets")
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="rebuild a data set (resumable through --cache-dir)")
    b.add_argument("name", choices=datasets.names())
    b.add_argument("--out", default=None)
    b.add_argument("--cache-dir", default=None)
    b.add_argument("--workers", type=int, default=None)
    b.add_argument("--quick", action="store_true")
    b.add_argument("--seed", type=int, default=datasets.DEFAULT_SEED)
    b.add_argument("--no-progress", action="store_true")
    i = sub.add_parser("info", help="print a data set's summary")
    i.add_argument("name", choices=datasets.names())
    a = p.parse_args(argv)
    if a.verb == "build":
        datasets.build(a.name, out=a.out, cache_dir=a.cache_dir, workers=a.workers, quick=a.quick,
                       progress=not a.no_progress, seed=a.seed)
    else:
        print(datasets.info(a.name))


if __name__ == "__main__":
    main()
