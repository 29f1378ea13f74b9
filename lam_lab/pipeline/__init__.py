"""`lam-lab pipeline`: data → multi-task model → fine-tune/Δ-ML → distillation → reactive MD → evaluation → report."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lam_lab.pipeline.config import PipelineConfig, load_pipeline_config, quick, tiny
from lam_lab.pipeline.state import StageRecord, builtin_fingerprint, load_record, save_record, stage_key


@dataclass
class PipelineResult:
    """The stage records (files, summaries, times), the report path and the total wall time (s)."""

    records: dict[str, StageRecord]
    report: Path
    out: Path
    seconds: float


def run_pipeline(config: PipelineConfig | str | Path | None = None, out: str | Path = "lam_lab_runs/pipeline",
                 quick_settings: bool = False, device: str | None = None, log: Callable[[str], None] = print,
                 progress: bool = True, stop_event: threading.Event | None = None) -> PipelineResult:
    """Run every stage in order, skipping those whose settings and upstream results are unchanged; write report.html."""
    import torch

    from lam_lab.pipeline.report import write_report
    from lam_lab.pipeline.stages import SECTIONS, STAGES, Context

    if not isinstance(config, PipelineConfig):
        config = load_pipeline_config(config, "quick" if quick_settings else "default")
    if device is not None:
        config.device = device
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(config, out, log=log, stop_event=stop_event, progress=progress)
    t0 = time.perf_counter()
    shipped = {"builtin": builtin_fingerprint()}
    for name, fn, upstream in STAGES:
        settings = {**config.section(SECTIONS[name]), "seed": config.seed} if name != "data" else config.section("data")
        key = stage_key(name, settings, [ctx.records[u] for u in upstream], shipped)
        record = load_record(out, name, key)
        if record is not None:
            log(f"[{name}] unchanged since the last run: skipped")
        else:
            log(f"[{name}] running")
            t = time.perf_counter()
            files, summary = fn(ctx)
            record = StageRecord(name, key, round(time.perf_counter() - t, 1), files, summary)
            save_record(out, record)
        ctx.records[name] = record
        if stop_event is not None and stop_event.is_set():
            log("stop requested: ending after this stage")
            break
    total = time.perf_counter() - t0
    dev = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report = write_report(out, ctx.records, config.scale, dev, sum(r.seconds for r in ctx.records.values()))
    log(f"report: {report}")
    return PipelineResult(ctx.records, report, out, total)


__all__ = ["run_pipeline", "PipelineConfig", "PipelineResult", "load_pipeline_config", "quick", "tiny"]
