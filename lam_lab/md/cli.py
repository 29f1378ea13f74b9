"""Moved to :mod:`lam_lab.cli.md`; ``python -m lam_lab.md.cli ...`` still runs ``lam-lab ...``."""

from __future__ import annotations

import sys

from lam_lab.cli.md import EXIT_GUARD, cmd_md, resolve_system


def main(argv: list[str] | None = None) -> int:
    """``python -m lam_lab.md.cli ...`` is the same as ``lam-lab ...``."""
    from lam_lab.cli import main as lam_lab_main

    return lam_lab_main(argv)


__all__ = ["EXIT_GUARD", "cmd_md", "main", "resolve_system"]

if __name__ == "__main__":
    sys.exit(main())
