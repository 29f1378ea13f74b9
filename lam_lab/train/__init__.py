"""Training: loss + prefactor schedule (Eq. 38–41), multi-task trainer (Eq. 44), events, checkpoints, metrics."""

from lam_lab.train.config import ConfigError, LossConfig, RunConfig, TrainConfig, load_run_config
from lam_lab.train.events import Event, JSONLLogger, TqdmProgress, read_jsonl
from lam_lab.train.metrics import MetricsRow, MetricsTable, evaluate
from lam_lab.train.trainer import TrainResult, train

__all__ = [
    "train", "TrainConfig", "TrainResult", "LossConfig", "RunConfig", "ConfigError", "load_run_config",
    "Event", "JSONLLogger", "TqdmProgress", "read_jsonl", "evaluate", "MetricsTable", "MetricsRow",
]


# ``lam_lab.train`` is both this package and the function ``ll.train(...)``: importing the package
# binds it as the attribute ``lam_lab.train``, so the module itself forwards calls to train().
import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):  # noqa: D102
        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
