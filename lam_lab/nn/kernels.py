"""Optional compiled CPU kernels (C++, built once on first use with torch.utils.cpp_extension).

The student's pair moments are memory-bound elementwise work over every neighbor pair; as PyTorch ops
they cost ~40 passes over [16, N·S] tensors, fused here into one loop per atom (csrc/pair_moments.cpp).
``LAM_LAB_KERNELS``: "auto" (default) builds and uses them on CPU, falling back to PyTorch with one
warning if no compiler is found; "0" never uses them. The build (~30–60 s) is cached by PyTorch under
``TORCH_EXTENSIONS_DIR`` (default ~/.cache/torch_extensions), so later processes load it in well under a second.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from types import ModuleType

_SOURCE = Path(__file__).with_name("csrc") / "pair_moments.cpp"
_NAME = "lam_lab_pair_moments_v1"
_lock = threading.Lock()
_state: dict[str, ModuleType | None | bool] = {"tried": False, "module": None}


def enabled() -> bool:
    """Whether compiled kernels may be used (``LAM_LAB_KERNELS`` is not "0")."""
    return os.environ.get("LAM_LAB_KERNELS", "auto").strip().lower() not in ("0", "off", "false", "no")


def pair_moments() -> ModuleType | None:
    """The compiled pair-moment kernel module, or None (disabled, or the build failed: warned once)."""
    if not enabled():
        return None
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            _state["module"] = _build()
    return _state["module"]  # type: ignore[return-value]


def _build() -> ModuleType | None:
    _say_if_compiling()
    try:
        from torch.utils.cpp_extension import load

        return load(name=_NAME, sources=[str(_SOURCE)], extra_cflags=["-O3"], verbose=False)
    except Exception as err:  # no compiler, no ninja, read-only cache: PyTorch ops give the same numbers
        warnings.warn(f"lam_lab: compiled student kernel unavailable ({type(err).__name__}: {str(err)[:200]}); "
                      "using PyTorch ops (same results, slower). Set LAM_LAB_KERNELS=0 to silence.", stacklevel=3)
        return None


def _say_if_compiling() -> None:
    """One line on stderr when the kernel is not built yet, so a first MD step that takes a minute is explained."""
    import sys

    try:
        from torch.utils.cpp_extension import _get_build_directory  # private: a hint only, never a failure

        if list(Path(_get_build_directory(_NAME, verbose=False)).glob("*.so")):
            return
    except Exception:  # noqa: BLE001
        return
    print("lam_lab: compiling the student's C++ pair kernel (once per machine, about a minute)…", file=sys.stderr, flush=True)
