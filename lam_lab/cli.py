"""The `lam-lab` command line: data, train, test, finetune, distill, md, pipeline, lab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def _load_any(name_or_path: str, label: str | None = None):
    """A built-in data set by name, or any supported file/folder by path."""
    from lam_lab.data.io import load_source

    return load_source(name_or_path, label=label)


def cmd_data_info(args: argparse.Namespace) -> int:
    """Print the summary table of a built-in data set or a file."""
    ds = _load_any(args.dataset, args.label)
    print(ds.summary())
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


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``lam-lab VERB: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    p = _Parser(prog="lam-lab", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    data = sub.add_parser("data", help="inspect, build and convert data sets")
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

    # each engine area registers its own verbs (imports stay light until a verb runs)
    import importlib

    for module in ("lam_lab.train.cli", "lam_lab.finetune_cli", "lam_lab.distill_cli", "lam_lab.md.cli",
                   "lam_lab.pretrained.cli", "lam_lab.pipeline.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
            continue
        mod.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lam-lab` console script."""
    args = build_parser().parse_args(argv)
    from lam_lab.data.errors import DataError

    try:
        return int(args.func(args) or 0)
    except (DataError, OSError) as exc:  # bad input: one line, not a traceback
        print(f"lam-lab: {one_line(exc)}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # a binary file where text was expected; name it when the arguments tell
        binary = [a for a in (argv if argv is not None else sys.argv[1:]) if _binary_file(a)]
        where = f"{binary[0]}: " if binary else ""
        print(f"lam-lab: {where}not UTF-8 text (a binary file given where YAML/text was expected?): {exc.reason} "
              f"at byte {exc.start}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's usual status, no traceback
        print("lam-lab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        print(f"lam-lab: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """The error's message on one line (several problems joined by ``; ``, long lists cut)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def _binary_file(arg: str) -> bool:
    """Whether a command-line argument names a file whose first 4 kB are not UTF-8."""
    if not Path(arg).is_file():  # regular files only: reading a FIFO or a device could block
        return False
    try:
        with open(arg, "rb") as fh:
            fh.read(4096).decode("utf-8")
    except UnicodeDecodeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _is_input_error(exc: BaseException) -> bool:
    """Parse errors of config and data files read by verbs outside lam_lab.data (YAML, pickle, HDF5, zip)."""
    import pickle
    import zipfile

    kinds: list[type] = [pickle.UnpicklingError, zipfile.BadZipFile, EOFError]
    try:
        import yaml

        kinds.append(yaml.YAMLError)
    except ImportError:
        pass
    return isinstance(exc, tuple(kinds))


if __name__ == "__main__":
    sys.exit(main())
