"""The training loop: single- and multi-task (Eq. 38–46) with EMA, schedules, events, checkpoints, DDP."""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import torch

from lam_lab.data.dataset import Dataset
from lam_lab.train import distributed
from lam_lab.train.checkpoint import CheckpointManager, load_resume_state, model_identity, rng_state, set_rng_state
from lam_lab.train.config import TrainConfig
from lam_lab.train.data import FrameSampler, GraphCache, Task, TaskSampler, graph_cache, resolve_tasks
from lam_lab.train.ema import EMA
from lam_lab.train.events import Callback, Event, EventBus, JSONLLogger, StepWindow, TqdmProgress
from lam_lab.train.guard import check_step
from lam_lab.train.loss import compute_loss, prefactors
from lam_lab.train.metrics import MetricsTable, evaluate_graphs
from lam_lab.train.rundir import open_run_folder
from lam_lab.train.schedule import Budget, LRSchedule

if TYPE_CHECKING:
    from lam_lab.potential import Potential


@dataclass
class TrainResult:
    """What a run returns: the model (EMA weights loaded), history of events, final metrics, files."""

    model: "Potential"
    history: list[dict[str, Any]]
    metrics: MetricsTable | None  # on the validation sets (None without validation data)
    steps: int
    wall_time_s: float
    stopped: bool = False  # ended by a stop request
    out_dir: Path | None = None
    checkpoint: Path | None = None  # last training checkpoint (resume point)
    best: Path | None = None  # model file with the best validation score
    final: Path | None = None  # model file of the returned weights
    timing: dict[str, float] = field(default_factory=dict)  # data vs compute seconds over the run


def train(
    model: "Potential",
    datasets: Dataset | str | Path | Mapping[str, Dataset | str | Path],
    weights: Mapping[str, float] | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = "auto",
    callbacks: Iterable[Callback] = (),
    device: str | torch.device | None = None,
    validation: Dataset | str | Path | Mapping[str, Dataset | str | Path] | None = None,
    resume: bool | str | Path = False,
    stop_event: threading.Event | None = None,
    labels: str | Mapping[str, str] | None = None,
    heads: str | Mapping[str, str] | None = None,
    progress: bool = True,
    graphs: Mapping[str, GraphCache] | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` on one data set or several (task name → Dataset, one head each, Eq. 44); a data file
    path or built-in name stands for a Dataset anywhere (read by :func:`lam_lab.data.io.load_source`).

    ``steps``/``minutes`` override the config's budget (default 1000 steps); ``out_dir="auto"``
    writes under ``lam_lab_runs/``, ``None`` writes nothing. ``callbacks`` receive every
    :class:`Event`; setting ``stop_event`` ends the run at the next step boundary with a
    checkpoint. ``resume=True`` continues from the newest checkpoint in ``out_dir`` (or a path).
    Other keyword ``options`` are :class:`TrainConfig` fields (``lr=1e-3, batch_atoms=64``). ``graphs``
    (task name → :class:`GraphCache` of its training frames, built earlier for this model) are reused, not rebuilt.
    """
    cfg = config or TrainConfig()
    unknown = sorted(set(options) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise TypeError(f"train() got unknown option(s) {unknown}; options are TrainConfig fields")
    overrides = {k: v for k, v in {"steps": steps, "minutes": minutes, "device": device}.items() if v is not None}
    overrides.update(options)
    cfg = cfg.replace(**overrides) if overrides else cfg
    if cfg.steps is None and cfg.minutes is None:
        cfg = cfg.replace(steps=TrainConfig.default_steps)
    cfg.check()
    tasks = resolve_tasks(model, datasets, weights, labels, heads, validation)
    for t in tasks:
        t.graphs = (graphs or {}).get(t.name)
    info = distributed.setup(cfg.device)
    lock = None
    try:
        out_dir, lock = open_run_folder(out_dir, resume, info.is_main)  # unique, not another run's, locked
        return Trainer(model, tasks, cfg, info, out_dir, callbacks, stop_event, progress).run(resume)
    finally:
        if lock is not None:
            lock.release()
        distributed.cleanup(info)


class Trainer:
    """One run; :meth:`run` is the loop, read top to bottom."""

    def __init__(self, model: "Potential", tasks: list[Task], cfg: TrainConfig, info: distributed.DistInfo,
                 out_dir: str | Path | None, callbacks: Iterable[Callback], stop_event: threading.Event | None,
                 progress: bool):
        self.cfg, self.tasks, self.info = cfg, tasks, info
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.stop_event = stop_event or threading.Event()
        subs: list[Callback] = []
        if info.is_main:
            subs = ([TqdmProgress()] if progress else []) + list(callbacks)
            if self.out_dir is not None:
                subs.append(JSONLLogger(self.out_dir / "events.jsonl"))
        self.bus = EventBus(subs)
        self.ckpt = CheckpointManager(self.out_dir / "checkpoints", cfg.keep_checkpoints) if self.out_dir else None
        self.budget = Budget(cfg.steps, cfg.minutes * 60 if cfg.minutes is not None else None)
        warmup = cfg.warmup if cfg.warmup is not None else (0.0 if cfg.schedule == "exp" else 0.05)
        self.schedule = LRSchedule(cfg.schedule, cfg.lr, warmup, cfg.final_lr_ratio)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if info.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
            torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.manual_seed(cfg.seed)
        for t in tasks:  # Eq. 43: one fitting net per task on the shared descriptor
            if t.head not in model.heads:
                model.add_head(t.head)
        self.model = model.to(info.device)
        self.dtype = next(model.parameters()).dtype
        for t in tasks:
            t.graphs = graph_cache(model, t.train, t.label, cfg.cache_graphs, given=t.graphs)
            has_val = t.validation is not None
            t.val_graphs = GraphCache(model, t.validation, t.label, keep=cfg.cache_graphs) if has_val else None
        self.task_sampler = TaskSampler([t.weight for t in tasks], cfg.seed)
        self.samplers = [FrameSampler(t.graphs.sizes(), cfg.seed, k, cfg.batch_size, cfg.batch_atoms, info.rank,
                                      info.world) for k, t in enumerate(tasks)]
        opt = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt(model.parameters(), lr=cfg.lr, amsgrad=cfg.amsgrad, weight_decay=cfg.weight_decay)
        self.ema: EMA | None = None
        self.history: list[dict[str, Any]] = []
        self.best_score, self.best_path = math.inf, None
        self.step, self.elapsed0 = 0, 0.0
        self.timing = {"data_s": 0.0, "compute_s": 0.0}
        self._ckpt_step, self._ckpt_path = -1, None

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, resume: bool | str | Path = False) -> TrainResult:
        """Train until the step/time budget is used up or a stop is requested."""
        resumed = self._resume(resume)
        if not resumed and not self.model.descriptor.stats_fitted:
            # input statistics of a fresh model from every task (up to ~1000 frames), not only the first one's
            # from the tasks' graph caches, so the neighbour lists built here are the ones training uses
            per_task = max(1, 1000 // len(self.tasks))
            self.model.fit_input_stats([t.graphs[i] for t in self.tasks
                                        for i in range(0, len(t.train), max(1, len(t.train) // per_task))])
        if not resumed and self.cfg.fit_bias:
            for t in self.tasks:  # Eq. 6: per-element energy shift of each task from its own data
                self.model.fit_energy_bias(t.train, head=t.head, label=t.label)
        if self.cfg.ema_decay and self.ema is None:
            self.ema = EMA(self.model, self.cfg.ema_decay)
        if resumed and self.cfg.ema_decay and self._ema_state is not None:
            self.ema.load_state_dict(self._ema_state)
        self.net = distributed.wrap(self.model, self.info)
        self.model.train()
        self._emit("start", message=f"resumed at step {self.step}" if resumed else "")
        t_start = self._t_start = time.perf_counter()
        window, stopped, first = StepWindow(), False, self.step
        self._first_step = first
        self._last_eval = (0.0, 0.0)  # (elapsed at the end of the last validation, its cost) in s
        self._next_frac = self._next_eval_fraction(self.budget.progress(self.step, self.elapsed0))
        while True:
            # every rank acts on the same (synchronised) stop flag and clock, so DDP ranks never disagree
            elapsed = self.elapsed0 + time.perf_counter() - t_start
            stop, elapsed = distributed.all_max([float(self.stop_event.is_set()), elapsed], self.info)
            progress = self.budget.progress(self.step, elapsed)
            if self.step > first:
                if self.step % self.cfg.log_every == 0 or time.perf_counter() - window.t0 >= self.cfg.log_seconds:
                    self._step_event(self._last_task(), progress, elapsed, window)
                    window = StepWindow()
                if self._eval_due(progress, elapsed):
                    t0 = time.perf_counter()
                    self._validate(progress, elapsed)
                    cost = distributed.all_max([time.perf_counter() - t0], self.info)[0]
                    self._last_eval = (elapsed + cost, cost)
                    if self.cfg.checkpoint_every is None:
                        self._checkpoint(elapsed, progress)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self._checkpoint(elapsed, progress)
                stop = stop or self.stop_event.is_set()  # a subscriber may have asked to stop just now
                stop = distributed.all_max([float(stop)], self.info)[0]
            if self.budget.done(self.step, elapsed) or stop:
                stopped = bool(stop) and not self.budget.done(self.step, elapsed)
                break
            self._train_step(self.step, progress, window)
            self.step += 1
        return self._finish(window, elapsed, stopped)

    def _train_step(self, step: int, progress: float, window: StepWindow) -> str:
        """One optimizer step on a batch of the task drawn for ``step``."""
        cfg = self.cfg
        lr = self.schedule(progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        pf = prefactors(cfg.loss, self.schedule.decay(progress))
        k = self.task_sampler.task_at(step)
        task = self.tasks[k]
        t0 = time.perf_counter()
        from lam_lab.nn.batch import collate

        frames = self.samplers[k].next()
        batch = collate([task.graphs[i] for i in frames]).to(self.info.device, self.dtype)
        t1 = time.perf_counter()
        want_virial = pf.v > 0 and batch.virial is not None and bool(batch.has_virial.any())
        with self._autocast():
            out = self.net(batch, head=task.head, forces=True, virial=want_virial, create_graph=True,
                           exact_hessian=False)
            terms = compute_loss(out, batch, pf, cfg.loss)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        # the norm is reported in step events even without clipping (a cheap divergence warning)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or math.inf)
        # before optimizer.step: a NaN never reaches the weights, the EMA or a checkpoint
        where = [task.source_index[i] if task.source_index else i for i in frames]  # the caller's frame numbers
        check_step(task.name, step, where, float(terms.total.detach()),
                   {"energy": terms.energy, "force": terms.force, "virial": terms.virial}, float(grad_norm),
                   getattr(out, "energy", None))
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        window.add(task.name, terms, t1 - t0, time.perf_counter() - t1)
        self._last = (lr, pf, terms, float(grad_norm))
        return task.name

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.bf16 and self.info.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @staticmethod
    def _next_eval_fraction(progress: float) -> float:
        return (math.floor(progress * 10 + 1e-9) + 1) / 10

    def _eval_due(self, progress: float, elapsed: float) -> bool:
        """Validate every ``eval_every`` steps, else at each tenth of the run (steps or time).

        In the automatic mode a validation is skipped while the last one took more than a quarter
        of the time since it ended, so validation never eats a short time budget.
        """
        if self.cfg.eval_every:  # the end of the run validates anyway: not twice at the last step
            return self.step % self.cfg.eval_every == 0 and progress < 1.0
        last_end, last_cost = self._last_eval
        if progress >= 1.0:  # the end of the run validates anyway (with parity data)
            return False
        if progress + 1e-12 >= self._next_frac and elapsed - last_end >= 3 * last_cost:
            self._next_frac = self._next_eval_fraction(progress)
            return True
        return False

    # -- reporting -----------------------------------------------------------------------------------
    def _emit(self, kind: str, **kw: Any) -> Event:
        ev = Event(kind=kind, step=self.step, total_steps=self.budget.steps, budget_s=self.budget.seconds,
                   epoch={t.name: s.epoch for t, s in zip(self.tasks, self.samplers)}, device=str(self.info.device),
                   **kw)
        if kind in ("step", "validation"):
            self.history.append(ev.to_dict())
        self.bus.emit(ev)
        return ev

    def _step_event(self, task: str, progress: float, elapsed: float, window: StepWindow) -> None:
        lr, pf, terms, grad_norm = self._last
        # steps/s is the training throughput; the ETA uses the overall pace, validation included
        rate = window.steps / max(window.data_s + window.compute_s, 1e-9)
        pace = (self.step - self._first_step) / max(elapsed - self.elapsed0, 1e-9)
        self.timing["data_s"] += window.data_s
        self.timing["compute_s"] += window.compute_s
        busy = max(window.data_s + window.compute_s, 1e-12)
        self._emit(
            "step", task=task, lr=lr, loss=window.loss / max(window.steps, 1),
            terms={"energy": terms.energy, "force": terms.force, "virial": terms.virial, "grad_norm": grad_norm},
            prefactors={"e": pf.e, "f": pf.f, "v": pf.v}, train_rmse=window.rmse(), steps_per_s=rate,
            eta_s=self.budget.eta(self.step, elapsed, pace), elapsed_s=elapsed, progress=progress,
            timing={"data_s": window.data_s, "compute_s": window.compute_s, "data_fraction": window.data_s / busy},
        )

    def _eval_model(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else self.model

    def _validate(self, progress: float, elapsed: float, final: bool = False) -> MetricsTable | None:
        """Metrics of the EMA weights on every task with validation data; keeps the best model file.

        During training each DDP rank evaluates its share and the sums are all-reduced; the final
        evaluation runs whole on every rank and keeps parity data.
        """
        tasks = [t for t in self.tasks if t.val_graphs is not None]
        if not tasks:
            return None
        net, lim = self._eval_model(), self.cfg.loss
        rows, parity, score, wsum = [], {}, 0.0, 0.0
        for t in tasks:
            shard = (0, 1) if final else (self.info.rank, self.info.world)
            sums, par = evaluate_graphs(net, t.val_graphs, t.head, self.cfg.val_batch_size, self.info.device,
                                        keep_parity=final, shard=shard)
            if not final:
                sums.reduce(lambda x: distributed.all_sum(x, self.info))
            row = sums.row(t.name, t.head, t.label, t.weight)
            rows.append(row)
            if par is not None:
                parity[t.name] = par
            # best-on-validation uses the loss the run converges to: limit prefactors, eV units
            parts = [lim.pf_e_limit * (row.e_rmse / 1000) ** 2, lim.pf_f_limit * (row.f_rmse / 1000) ** 2]
            score += t.weight * sum(p for p in parts if math.isfinite(p))
            wsum += t.weight
        score /= wsum
        results = {r.name: {"e_rmse": r.e_rmse, "e_mae": r.e_mae, "f_rmse": r.f_rmse, "f_mae": r.f_mae} for r in rows}
        self._emit("validation", validation=results, elapsed_s=elapsed, progress=progress, loss=score)
        if score < self.best_score:
            self.best_score = score
            if self.out_dir is not None and self.info.is_main:
                from lam_lab.models import save

                self.best_path = self.out_dir / "best.pt"
                save(self._eval_model(), self.best_path, extra={"step": self.step, "validation": results})
        return MetricsTable(rows, parity)

    # -- checkpoints ---------------------------------------------------------------------------------
    def _checkpoint(self, elapsed: float, progress: float) -> Path | None:
        if self.ckpt is None or not self.info.is_main:
            return None
        if self._ckpt_step == self.step and self._ckpt_path is not None:
            return self._ckpt_path
        state = {
            "step": self.step, "elapsed_s": elapsed, "config": asdict(self.cfg),
            "tasks": [{"name": t.name, "head": t.head, "label": t.label, "weight": t.weight} for t in self.tasks],
            "model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(), "samplers": [s.state_dict() for s in self.samplers],
            "rng": rng_state(), "best_score": self.best_score, "history": self.history, "timing": dict(self.timing),
            **model_identity(self.model),
        }
        path = self.ckpt.save(state, self.step)
        self._ckpt_step, self._ckpt_path = self.step, path
        self._emit("checkpoint", path=str(path), elapsed_s=elapsed, progress=progress)
        return path

    def _resume(self, resume: bool | str | Path) -> bool:
        self._ema_state = None
        if not resume:
            return False
        path = Path(resume) if not isinstance(resume, bool) else (self.ckpt.latest() if self.ckpt else None)
        if path is None:
            warnings.warn("resume requested but no checkpoint found: starting from step 0", stacklevel=3)
            return False
        state = load_resume_state(path, self.model, [t.name for t in self.tasks], self.info.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for sampler, s in zip(self.samplers, state["samplers"]):
            sampler.load_state_dict(s)
        set_rng_state(state["rng"])
        self._ema_state = state["ema"]
        self.step, self.elapsed0 = int(state["step"]), float(state["elapsed_s"])
        self.best_score, self.history = float(state["best_score"]), list(state["history"])
        self.timing = dict(state.get("timing", self.timing))
        best = self.out_dir / "best.pt" if self.out_dir is not None else None
        self.best_path = best if best is not None and best.exists() else None
        return True

    # -- the end ---------------------------------------------------------------------------------------
    def _finish(self, window: StepWindow, elapsed: float, stopped: bool) -> TrainResult:
        progress = self.budget.progress(self.step, elapsed)
        if window.steps:
            self._step_event(self._last_task(), progress, elapsed, window)
        if stopped:  # a stop request wants its checkpoint at once; validation comes after
            last_ckpt = self._checkpoint(elapsed, progress)
            metrics = self._validate(progress, elapsed, final=True)
        else:
            metrics = self._validate(progress, elapsed, final=True)
            last_ckpt = self._checkpoint(elapsed, progress)
        if stopped:
            self._emit("stop", elapsed_s=elapsed, progress=progress, path=str(last_ckpt) if last_ckpt else None,
                       message="stop requested")
        final = None
        if self.ema is not None:
            self.model.load_state_dict(self.ema.model.state_dict())
        self.model.eval()
        if self.out_dir is not None and self.info.is_main:
            from lam_lab.models import save

            final = save(self.model, self.out_dir / "model.pt", extra={"step": self.step}) or self.out_dir / "model.pt"
        final_rmse = {r.name: {"e_rmse": r.e_rmse, "f_rmse": r.f_rmse} for r in metrics.rows} if metrics else {}
        self._emit("end", elapsed_s=elapsed, progress=progress, timing=dict(self.timing), validation=final_rmse)
        self.bus.close()
        wall = self.elapsed0 + time.perf_counter() - self._t_start  # final validation and saving included
        return TrainResult(self.model, self.history, metrics, self.step, wall, stopped, self.out_dir,
                           last_ckpt or (self.ckpt.latest() if self.ckpt else None), self.best_path,
                           Path(final) if final else None, dict(self.timing))

    def _last_task(self) -> str:
        return self.tasks[self.task_sampler.task_at(max(self.step - 1, 0))].name
