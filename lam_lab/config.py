"""Typed configs: one loader for every run file, the Python API and the CLI's ``--set KEY=VALUE``.

``load_config(source, cls, overrides)`` reads a YAML/TOML/JSON file, a dict or an instance of the
dataclass ``cls``, lays it over the class's own defaults, applies ``{"a.b": value}`` or ``"a.b=value"``
overrides and validates the result: an unknown key is refused naming the key and the valid ones, a
value of the wrong type naming its field (``train.lr``), always with the file it came from.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import numbers
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, TypeVar

from lam_lab.data.errors import DataError

T = TypeVar("T")
Overrides = Mapping[str, Any] | Iterable[str] | str | None
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # 1e-3: a string to YAML 1.1, a number here


class ConfigError(DataError):
    """A bad configuration: ``source`` is the file, ``field`` the key path (e.g. ``train.lr``)."""


def load_config(source: Any, cls: type[T], overrides: Overrides = None, *, base: Any = None,
                what: str = "config file", name: str | None = None) -> T:
    """A validated ``cls`` from a file path, a dict or an instance (None: the defaults), with ``overrides`` on top.

    Nested sections of a file refine the defaults of ``cls`` (or of ``base``, an instance giving other
    defaults); top-level keys named in ``cls.ALIASES`` (old flat names) move to their dotted place.
    ``what`` names the file in errors ("run file"), ``name`` the source when it is not a file.
    """
    where = name if name is not None else (str(source) if isinstance(source, (str, os.PathLike)) else None)
    raw = _defaults(cls) if base is None else _plain(dataclasses.asdict(base))
    given = _source_dict(source, what)
    aliased = []
    for key in list(given):
        target = _alias(cls, key, given[key])
        if target != key:
            aliased.append((target, given.pop(key)))
    _merge(raw, given)
    for key, value in aliased + [(_alias(cls, k, v), v) for k, v in parse_overrides(overrides, where).items()]:
        set_key(raw, key, value, where)
    cfg = from_dict(cls, raw, "", where)
    check = getattr(cfg, "check", None)
    if callable(check):
        check(where)
    return cfg


def parse_overrides(overrides: Overrides, source: str | None = None) -> dict[str, Any]:
    """``{"a.b": value}`` from a mapping (values as given) or ``"a.b=value"`` strings (values read as YAML)."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return {str(k): _plain(v) for k, v in overrides.items()}
    items = [overrides] if isinstance(overrides, str) else list(overrides)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key.path=value", source=source)
        out[key.strip()] = parse_value(text)
    return out


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML (``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``, ``{a: 1}``), ``1e-3`` a number."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
        return float(value)
    return value


def set_key(raw: dict[str, Any], key: str, value: Any, source: str | None = None) -> None:
    """Set ``a.b.c`` to ``value`` inside the nested dict ``raw`` (missing or null sections become mappings)."""
    parts = key.split(".")
    node = raw
    for i, p in enumerate(parts[:-1]):
        if node.get(p) is None:
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {key}: {'.'.join(parts[:i + 1])} is not a section", source=source,
                              field=key)
    node[parts[-1]] = value


def read_config_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping in a YAML, JSON or TOML file; ConfigError for a missing, unreadable, binary or non-mapping file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} not found", source=str(path))
    if path.is_dir():
        raise ConfigError(f"{what} is a folder, not a YAML/TOML file", source=str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (a binary file?): byte {exc.start}", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", source=str(path)) from None
    if "\x00" in text:
        raise ConfigError(f"{what} is a binary file, not YAML/TOML", source=str(path))
    try:
        if path.suffix == ".toml":
            import tomllib

            raw = tomllib.loads(text)
        else:  # JSON is YAML
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # the parsers' own messages carry line numbers
        raise ConfigError(f"cannot parse: {' '.join(str(exc).split())}", source=str(path)) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"top level must be a mapping of keys to values, got {type(raw).__name__}", source=str(path))
    return raw


def from_dict(cls: type, raw: Any, path: str, source: str | None = None) -> Any:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types with the key path."""
    shorthand = getattr(cls, "SHORTHAND", None)
    if shorthand and isinstance(raw, str):  # e.g. a bare data source for {source: ...}
        raw = {shorthand: raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {raw!r}", source=source, field=path or None)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = suggest(str(key), names)
            hint = f"; did you mean {close!r}?" if close else ""
            raise ConfigError(f"unknown key {key!r}{hint} (valid keys: {', '.join(names)})", source=source, field=where)
        kwargs[key] = _coerce(hints[key], value, where, source)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        where = f"{path}.{missing[0]}" if path else missing[0]
        raise ConfigError(f"missing required key {missing[0]!r}", source=source, field=where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own __post_init__ check
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc), source=source, field=path or None) from None


def suggest(name: str, known: list[str]) -> str | None:
    """The known name closest to a misspelt ``name`` (close spelling, or one a prefix of the other)."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return close[0]
    prefixed = [k for k in known if name.startswith(k) or k.startswith(name)]
    return max(prefixed, key=len) if prefixed else None


# -- helpers --------------------------------------------------------------------------------------------
def _coerce(tp: Any, value: Any, where: str, source: str | None) -> Any:
    """``value`` checked against the type hint ``tp`` (unions, Literal, dataclasses, dict/list, scalars)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    fail = lambda what: ConfigError(f"expected {what}, got {value!r}", source=source, field=where)  # noqa: E731
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, source)
            except ConfigError as exc:
                errors.append(exc.message)
        text = errors[-1] if len(errors) == 1 else f"{value!r} fits none of {tp}"
        raise ConfigError(text, source=source, field=where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{value!r} is not one of {list(args)}", source=source, field=where)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, source)
    if origin is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
        return {str(k): _coerce(args[1], v, f"{where}.{k}", source) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise fail("a list")
        return [_coerce(args[0], v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if tp is bool and not isinstance(value, bool):
        raise fail("true/false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise fail("an integer")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise fail("a number")
        return float(value)
    if tp is str and not isinstance(value, str):
        raise fail("a string")
    return value


def _defaults(cls: type) -> dict[str, Any]:
    """The defaults of ``cls`` as a plain dict ({} when it has required fields)."""
    try:
        return _plain(dataclasses.asdict(cls()))
    except TypeError:
        return {}


def _source_dict(source: Any, what: str) -> dict[str, Any]:
    """The keys a source gives: a file's mapping, a dict, an instance's fields (None: none)."""
    if source is None:
        return {}
    if isinstance(source, (str, os.PathLike)):
        return read_config_file(source, what)
    if dataclasses.is_dataclass(source) and not isinstance(source, type):
        return _plain(dataclasses.asdict(source))
    if isinstance(source, Mapping):
        return _plain(copy.deepcopy(dict(source)))
    raise ConfigError(f"a config is a file path, a mapping or a dataclass instance, got {type(source).__name__}")


def _plain(value: Any) -> Any:
    """Dataclass instances as dicts, tuples as lists, paths as strings (what a file would hold)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Lay ``top`` over ``base`` in place, section by section."""
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _alias(cls: type, key: str, value: Any) -> str:
    """Where an old flat key of ``cls`` lives now (``cls.ALIASES``); a mapping under a section's own name stays."""
    target = getattr(cls, "ALIASES", {}).get(key)
    if target is None or (isinstance(value, Mapping) and target.split(".")[0] == key):
        return key
    return target


__all__ = ["load_config", "ConfigError", "parse_overrides", "parse_value", "set_key", "read_config_file",
           "from_dict", "suggest"]
