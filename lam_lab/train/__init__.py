"""Training: loss + prefactor schedule (Eq. 38–41), multi-task trainer (Eq. 44), events, checkpoints, metrics."""

from lam_lab.train.config import ConfigError, LossConfig, RunConfig, TrainConfig, load_run_config
from lam_lab.train.events import Event, JSONLLogger, TqdmProgress, read_jsonl

# the parts that need torch load on first use, so that `lam-lab data ...` (which reads TrainConfig through
# the fine-tune and distill commands' parsers) does not spend ~2 s importing torch
_LAZY = {"MetricsRow": "metrics", "MetricsTable": "metrics", "evaluate": "metrics", "TrainResult": "trainer",
         "train": "trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"lam_lab.train.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lam_lab.train' has no attribute {name!r}")


__all__ = [
    "train", "TrainConfig", "TrainResult", "LossConfig", "RunConfig", "ConfigError", "load_run_config",
    "Event", "JSONLLogger", "TqdmProgress", "read_jsonl", "evaluate", "MetricsTable", "MetricsRow",
]
