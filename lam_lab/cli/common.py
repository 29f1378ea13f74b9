"""What the verbs share: the one ``--set KEY=VALUE`` option, explicit flags as overrides, argument types."""

from __future__ import annotations

import argparse
from typing import Any, Mapping


def add_set(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``--set KEY=VALUE`` (repeatable): any key of the verb's config, the value read as YAML."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override any config key (repeatable; value read as YAML), e.g. --set {example}")


def overrides(args: argparse.Namespace, flags: Mapping[str, str], nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The explicit flags that were given (``flags``: argparse dest → config key), then ``--set`` (it wins).

    A flag not given is None, or :data:`UNSET` for the ``nullable`` ones, whose None is a value.
    """
    from lam_lab.config import parse_overrides

    out: dict[str, Any] = {}
    for dest, key in flags.items():
        value = getattr(args, dest, None)
        if value is UNSET or (value is None and dest not in nullable):
            continue
        out[key] = value
    out.update(parse_overrides(getattr(args, "set", None) or []))
    return out


def float_or_str(text: str) -> float | str:
    """A number when the text is one (a split fraction), else the text (a data source)."""
    try:
        return float(text)
    except ValueError:
        return text


def int_or_str(text: str) -> int | str:
    """An integer when the text is one (a number of layers), else the text ("none", "descriptor")."""
    return int(text) if text.strip().isdigit() else text


def none_or_str(text: str) -> str | None:
    """None for ``none``/``null`` (e.g. ``--pretrained none``: from scratch), else the text."""
    return None if text.strip().lower() in ("none", "null") else text


# the default of a flag whose None means something (--pretrained none)
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "(not given)"})()
