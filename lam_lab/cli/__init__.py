"""The `lam-lab` command line: data, train, test, finetune, learning-curve, distill, md, pretrain, pipeline, lab.

One module per verb in this package, each with ``add_parser(subparsers)``. Every verb that runs from a
config takes ``--set KEY=VALUE`` (repeatable) for any of its keys; its explicit flags are overrides too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``lam-lab VERB: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print the usage error on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


VERBS = ("data", "train", "finetune", "learning_curve", "distill", "md", "pretrain", "pipeline", "lab")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb (each verb's module imports its engine only when it runs)."""
    import importlib

    p = _Parser(prog="lam-lab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        importlib.import_module(f"lam_lab.cli.{verb}").add_parser(sub)
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
