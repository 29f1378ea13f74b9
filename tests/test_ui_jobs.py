"""The Lab panels' JobPanel base (start / stop / fail, progress, status, unique run folders) on a counting job."""

from __future__ import annotations

import pytest
import torch

from lam_lab.data.errors import DataError
from lam_lab.ui._jobs import JobPanel
from lam_lab.ui.train_panel import TrainPanel


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# -- the JobPanel base: start / stop / fail, unique run folders -----------------------------------------------
class _CountPanel(JobPanel):
    """A minimal JobPanel: counts to ``n`` (writing a file when asked), stops or fails on request."""

    run_prefix = "count"

    def __init__(self, out_root, **kwargs):
        super().__init__(out_root=out_root, **kwargs)
        self.n, self.write, self.fail_with, self.finished = 3, True, None, []
        self.children = [self.job.widget, self.message]

    def _prepare(self):
        if self.n < 0:
            raise DataError("n must be ≥ 0", field="n")
        return (self.n,)

    def _job(self, ctx, n):
        import time

        for k in range(n):
            ctx.check()
            ctx.progress((k + 1) / n, f"counted {k + 1} of {n}")
            time.sleep(0.01)
            if self.fail_with is not None:
                raise self.fail_with
        if self.write:
            (self.out_dir / "result.txt").write_text(str(n))
        self.result = n
        return n

    def _finished(self, result):
        self.finished.append(result)


def test_job_panel_start_done_busy_and_form_errors(tmp_path):
    panel = _CountPanel(tmp_path / "runs")
    assert panel.start() is True and panel.start() is False  # one job at a time
    assert panel.wait(30) == 3 and panel.job.state == "done" and panel.finished == [3]
    assert panel.job.status.value == "done" and panel.job.progress.value == 1.0
    assert panel.out_dir.parent == tmp_path / "runs" and panel.out_dir.name.startswith("count-")
    assert (panel.out_dir / "result.txt").read_text() == "3"
    first = panel.out_dir
    panel.job.start_button.click()  # the button is start()
    panel.wait(30)
    assert panel.out_dir != first and first.is_dir()  # a new folder per run, the old one untouched
    panel.n = -1
    assert panel.start() is False and "n must be ≥ 0" in panel.error
    assert "Problem" in panel.message.value and not panel.busy
    (tmp_path / "a-file").write_text("")
    panel.n, panel.out_root = 3, tmp_path / "a-file"  # no run folder can be made there: a message, no traceback
    assert panel.start() is False and "cannot make a run folder" in panel.error and not panel.busy


def test_job_panel_stop_and_fail_paths(tmp_path):
    panel = _CountPanel(tmp_path)
    panel.n = 10_000
    assert panel.start()
    panel.stop()
    panel.wait(30)
    assert panel.job.state == "stopped" and panel.job.status.value == "stopped" and panel.finished == []
    assert panel.job.stop_button.disabled and not panel.job.start_button.disabled
    panel.n, panel.fail_with = 3, RuntimeError("the engine broke")
    assert panel.start()
    assert panel.wait(30) is None and panel.job.state == "failed"
    assert panel.error == "RuntimeError: the engine broke" and "the engine broke" in panel.message.value
    assert not panel.out_dir.exists()  # a failed run that wrote nothing leaves no empty folder
    panel.fail_with = DataError("frame 3 has no forces", source="x.extxyz")
    panel.start()
    panel.wait(30)
    assert "frame 3 has no forces" in panel.error and "DataError" not in panel.error  # our own errors in plain words


def test_two_panels_started_in_the_same_second_get_their_own_run_folders(tmp_path, monkeypatch):
    import datetime as dt

    from lam_lab.train import rundir

    class Frozen(dt.datetime):  # every panel starts "in the same second"
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(rundir._dt, "datetime", Frozen)
    panels = [_CountPanel(tmp_path) for _ in range(3)]
    for p in panels:
        p.n = 50
    assert all(p.start() for p in panels)
    for p in panels:
        p.wait(60)
    folders = [p.out_dir for p in panels]
    assert len(set(folders)) == 3 and all((f / "result.txt").is_file() for f in folders)
    assert [f.name for f in folders] == ["count-20260102-030405", "count-20260102-030405-2", "count-20260102-030405-3"]


def test_train_and_distill_panels_use_unique_engine_run_folders(tmp_path):
    from lam_lab.ui.distill_panel import DistillPanel

    a, b = TrainPanel(out_root=tmp_path), TrainPanel(out_root=tmp_path)
    fa, fb = a.new_run_folder(), b.new_run_folder()
    assert fa != fb and fa.name.startswith("train-") and fa.is_dir() and fb.is_dir()
    assert DistillPanel(out_root=tmp_path).new_run_folder().name.startswith("distill-")
