"""Import nglview 3.1.4 on setuptools without ``pkg_resources`` (removed in setuptools 81)."""

from __future__ import annotations

import importlib.metadata as _md
import sys
import types
from typing import Any


def import_nglview() -> Any:
    """The ``nglview`` module; a stand-in ``pkg_resources`` answers its one version lookup if needed."""
    if "nglview" in sys.modules:
        return sys.modules["nglview"]
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        # nglview 3.1.4 only calls pkg_resources.get_distribution("nglview").version at import;
        # the stand-in is removed right after, so nothing else in the process sees it.
        sys.modules["pkg_resources"] = _stand_in()
        try:
            import nglview
        finally:
            sys.modules.pop("pkg_resources", None)
        return nglview
    import nglview

    return nglview


def _stand_in() -> types.ModuleType:
    mod = types.ModuleType("pkg_resources")

    class DistributionNotFound(Exception):
        """No installed distribution of that name."""

    def get_distribution(name: str) -> types.SimpleNamespace:
        try:
            return types.SimpleNamespace(version=_md.version(name))
        except _md.PackageNotFoundError as exc:
            raise DistributionNotFound(name) from exc

    mod.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
    mod.get_distribution = get_distribution  # type: ignore[attr-defined]
    return mod
