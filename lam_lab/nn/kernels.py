"""Optional compiled CPU kernels (C++, built once on first use with torch.utils.cpp_extension).

The student's pair moments are memory-bound elementwise work over every neighbor pair; as PyTorch ops
they cost ~40 passes over [16, N·S] tensors, fused here into one loop per atom (csrc/pair_moments.cpp);
a student's whole MD step (energies, forces, virial) is one call (csrc/student_md.cpp).
``LAM_LAB_KERNELS``: "auto" (default) builds and uses them on CPU, falling back to PyTorch with one
warning if no compiler is found; "0" never uses them. The build (~30–60 s) is cached by PyTorch under
``TORCH_EXTENSIONS_DIR`` (default ~/.cache/torch_extensions), so later processes load it in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from types import ModuleType

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = [_CSRC / "pair_moments.cpp", _CSRC / "student_md.cpp"]
# -march=native: built on the machine that runs it; -fno-math-errno lets sqrt vectorise; -fopenmp-simd
# honours `omp simd` reductions (vector dot products) without OpenMP threading
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd"]

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


def _cpu() -> bytes:
    """What -march=native compiles for: the CPU's instruction-set flags (a build cached in a home folder
    shared by different machines must not be loaded on a CPU that lacks them)."""
    import platform

    try:
        with open("/proc/cpuinfo", "rb") as fh:
            flags = next((line for line in fh if line.startswith((b"flags", b"Features"))), b"")
    except OSError:
        flags = b""
    return platform.machine().encode() + flags


def _name() -> str:
    """Module name carrying a hash of every source, header and flag and of the CPU, so any change gets its own
    fresh build (PyTorch's own check hashes the .cpp files only, not the header they share)."""
    digest = hashlib.sha1(" ".join(_FLAGS).encode() + _cpu())
    for path in sorted(_CSRC.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode() + path.read_bytes())
    return f"lam_lab_kernels_{digest.hexdigest()[:10]}"


STALE_LOCK_SECONDS = 900  # a build takes about a minute; a lock this old was left by a killed build


def _clear_stale_lock(name: str) -> None:
    """Remove PyTorch's build lock when a killed build left it: its waiters would otherwise sleep forever."""
    import time

    try:
        from torch.utils.cpp_extension import _get_build_directory  # private: a hint only, never a failure

        lock = Path(_get_build_directory(name, verbose=False)) / "lock"
        if lock.is_file() and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)
            warnings.warn(f"lam_lab: removed a stale kernel build lock ({lock}) left by an interrupted build",
                          stacklevel=3)
    except Exception:  # noqa: BLE001
        return


def _build() -> ModuleType | None:
    name = _name()
    _say_if_compiling(name)
    _clear_stale_lock(name)
    try:
        from torch.utils.cpp_extension import load

        return load(name=name, sources=[str(s) for s in _SOURCES], extra_cflags=_FLAGS, verbose=False)
    except Exception as err:  # no compiler, no ninja, read-only cache: PyTorch ops give the same numbers
        # the compiler's own "error:" lines say more than the start of ninja's command line
        lines = [ln.strip() for ln in str(err).splitlines() if "error" in ln.lower()][:3] or [str(err)[:200]]
        detail = " | ".join(lines)[:600]
        warnings.warn(f"lam_lab: compiled student kernel unavailable ({type(err).__name__}: {detail}); "
                      "using PyTorch ops (same results, slower). Set LAM_LAB_KERNELS=0 to silence.", stacklevel=3)
        return None


def _say_if_compiling(name: str) -> None:
    """One line on stderr when the kernel is not built yet, so a first MD step that takes a minute is explained."""
    import sys

    try:
        from torch.utils.cpp_extension import _get_build_directory  # private: a hint only, never a failure

        if list(Path(_get_build_directory(name, verbose=False)).glob("*.so")):
            return
    except Exception:  # noqa: BLE001
        return
    print("lam_lab: compiling the student's C++ kernels (once per machine, about a minute)…", file=sys.stderr,
          flush=True)
