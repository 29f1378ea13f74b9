"""`lam-lab data info|list|build|convert`: inspect, rebuild and convert data sets."""

from __future__ import annotations

import argparse


def _load_any(name_or_path: str, label: str | None = None):
    """A built-in data set by name, or any supported file/folder by path."""
    from lam_lab.data.io import load_source

    return load_source(name_or_path, label=label)


def cmd_data_info(args: argparse.Namespace) -> int:
    """Print the summary table of a built-in data set or a file."""
    print(_load_any(args.dataset, args.label).summary())
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    """List the built-in data sets."""
    from lam_lab import datasets

    for name in datasets.available():
        print(name)
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    """Rebuild a built-in data set from scratch (resumable through the label cache)."""
    from lam_lab import datasets

    ds = datasets.build(args.name, out=args.out, cache_dir=args.cache, workers=args.workers, quick=args.quick)
    print(ds.summary())
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    """Convert between supported formats (e.g. extxyz -> deepmd/npy)."""
    from lam_lab.data import write

    ds = _load_any(args.src, args.label)
    write(ds, args.dst, format=args.format, label=args.label)
    print(f"wrote {len(ds)} frames to {args.dst}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` verb and its actions (they take arguments, not a config: no ``--set``)."""
    data = subparsers.add_parser("data", help="inspect, build and convert data sets")
    dsub = data.add_subparsers(dest="action", required=True)
    info = dsub.add_parser("info", help="summary table of a data set (built-in name or file)")
    info.add_argument("dataset")
    info.add_argument("--label", default=None, help="label-set name for files that do not carry one")
    info.set_defaults(func=cmd_data_info)
    lst = dsub.add_parser("list", help="list the built-in data sets")
    lst.set_defaults(func=cmd_data_list)
    build = dsub.add_parser("build", help="rebuild a built-in data set (resumable)")
    build.add_argument("name")
    build.add_argument("--out", default=None, help="output file (default: the packaged location)")
    build.add_argument("--cache", default=None, help="label cache folder (resume point)")
    build.add_argument("--workers", type=int, default=None)
    build.add_argument("--quick", action="store_true", help="tiny build for testing")
    build.set_defaults(func=cmd_data_build)
    conv = dsub.add_parser("convert", help="convert between formats")
    conv.add_argument("src")
    conv.add_argument("dst")
    conv.add_argument("--format", default=None)
    conv.add_argument("--label", default=None)
    conv.set_defaults(func=cmd_data_convert)
