"""`lam-lab lab`: open the Lab (notebooks/00_lab.ipynb) in JupyterLab."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from lam_lab.data.errors import DataError

NOTEBOOK = Path("notebooks") / "00_lab.ipynb"


def cmd_lab(args: argparse.Namespace) -> int:
    """Run ``jupyter lab`` on the Lab notebook (in the repository, or the one given)."""
    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise DataError("no Lab notebook here: run from the repository root or pass --notebook", source=str(notebook))
    if importlib.util.find_spec("jupyterlab") is None:
        raise DataError("JupyterLab is not installed in this environment (pip install jupyterlab)", field="jupyter")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", str(notebook), *args.jupyter_args])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``lab`` verb."""
    p = subparsers.add_parser("lab", help="open the Lab (notebooks/00_lab.ipynb) in JupyterLab")
    p.add_argument("--notebook", default=str(NOTEBOOK), help="notebook to open")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="further arguments for jupyter lab")
    p.set_defaults(func=cmd_lab)
