"""Data panel, plots, background jobs and the Lab shell, driven from Python as a notebook user's clicks would."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lam_lab as ll
from lam_lab.ui import plots
from lam_lab.ui._figures import shown_titles
from lam_lab.ui._jobs import BackgroundJob
from lam_lab.ui.data_panel import DataPanel
from lam_lab.ui.lab import Lab


@pytest.fixture
def xyz_file(mixed_ds, tmp_path):
    path = tmp_path / "mixed.extxyz"
    ll.data.write(mixed_ds, path)
    return path


def test_panel_loads_a_file_and_shows_summary_plots_and_frames(xyz_file):
    panel = DataPanel(builtins=[])
    ds = panel.load_path(str(xyz_file))
    assert ds is not None and len(ds) == 8 and panel.error == ""
    html = panel.summary.children[0].value
    assert "mixed" in html and "<td>8</td>" in html and "Cu" in html and "emt" in html and "lj" in html
    assert set(panel.figures) == {"coverage", "energy", "force"}  # "compare" only with a second set
    # one histogram subplot per label set, each with this set's values
    energy = panel.figures["energy"]
    assert [t.type for t in energy.data] == ["histogram", "histogram"]
    assert len(energy.data[0].x) == 8 and len(energy.data[1].x) == 5  # lj labels only the molecules
    assert sum(len(t.x) for t in panel.figures["force"].data[:1]) == sum(len(f) for f in ds)
    assert panel.frame_slider.max == 8  # numbered 1..8 on screen
    panel.show_frame(5)
    assert panel.frame_slider.value == 6 and "Cu4" in panel.frame_info.value and "periodic" in panel.frame_info.value
    assert panel._view is not None and len(panel._view._ngl_component_ids) == 1


def test_corrupt_file_shows_the_error_in_the_panel(xyz_file, tmp_path):
    panel = DataPanel(builtins=[])
    panel.load_path(xyz_file)
    bad = tmp_path / "bad.extxyz"
    bad.write_text("3\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 1 0 0\n")  # 3 atoms announced, 2 given
    assert panel.load_path(bad) is None
    assert str(bad) in panel.error and "frame 0" in panel.error
    assert "Could not load the data" in panel.message.value
    assert panel.dataset is not None and panel.dataset.name == "mixed"  # the good set stays
    overlap = tmp_path / "overlap.extxyz"
    overlap.write_text("2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0.1 0 0\n")
    panel.load_path(overlap)
    assert "field positions" in panel.error and "overlap" in panel.error
    panel.load_path(tmp_path / "missing.xyz")
    assert "no such file" in panel.error
    panel.load_path(xyz_file)
    assert panel.error == "" and panel.message.value == ""


def test_compare_overlays_two_sets_and_reads_deepmd_folders(mixed_ds, tmp_path):
    folder = tmp_path / "npy"
    ll.data.write(mixed_ds.with_label("emt"), folder, format="deepmd/npy", label="emt")
    panel = DataPanel(mixed_ds, builtins=[])
    other = panel.compare(str(folder))
    assert other is not None and len(other) == 8
    assert len(panel.summary.children) == 2
    cov = panel.figures["compare"]
    assert [t.type for t in cov.data] == ["bar", "bar"] and list(cov.data[0].x) == ["H", "C", "O", "Cu"]
    assert {t.name for t in panel.figures["energy"].data} == {"mixed", "mixed (2)"}
    energy = panel.figures["energy"]  # two sets: densities on shared bins, each set once in the legend
    assert {t.histnorm for t in energy.data} == {"probability density"}
    assert sorted(t.name for t in energy.data if t.showlegend) == ["mixed", "mixed (2)"]
    assert not energy.layout.annotations  # label sets named in the x-axis titles, nothing printed over the legend
    assert "emt" in energy.layout.xaxis.title.text and "density" in energy.layout.yaxis.title.text
    assert shown_titles(panel.energy_out) == ["energy per atom"]  # reached the Output widget (state, not display)
    panel.clear_compare()
    assert panel.other is None and len(panel.summary.children) == 1
    assert "compare" not in panel.figures and panel.figures["coverage"].data[1].type == "heatmap"


def test_builtin_dropdown_and_unknown_builtin():
    panel = DataPanel(builtins=["a-set"])
    assert panel.builtin.options == ("a-set",) and not panel.builtin.disabled
    assert DataPanel(builtins=[]).builtin.disabled
    assert panel.load("no-such-set") is None and panel.error


def test_periodic_table_positions_and_parity():
    pos = {z: plots.table_position(z) for z in (1, 2, 3, 10, 11, 13, 18, 26, 55, 57, 71, 72, 86, 89, 103, 104)
           if z <= 103}
    assert pos[1] == (1, 1) and pos[2] == (1, 18) and pos[3] == (2, 1) and pos[10] == (2, 18)
    assert pos[11] == (3, 1) and pos[13] == (3, 13) and pos[18] == (3, 18) and pos[26] == (4, 8)
    assert pos[55] == (6, 1) and pos[57] == (9, 3) and pos[71] == (9, 17) and pos[72] == (6, 4)
    assert pos[86] == (6, 18) and pos[89] == (10, 3) and pos[103] == (10, 17)
    fig = plots.parity([0.0, 1.0, 2.0], [0.0, 1.0, 2.3], unit="eV")
    assert "RMSE 0.1732" in fig.layout.title.text and "MAE 0.1" in fig.layout.title.text
    with pytest.raises(ValueError):
        plots.parity([1.0], [1.0, 2.0])


def test_background_job_runs_once_stops_and_reports_errors():
    gate = threading.Event()
    runs = []

    def work(ctx, n):
        runs.append(n)
        for k in range(200):
            gate.wait(0.01)
            ctx.progress(k / 200, "working")
            ctx.check()
        return n

    job = BackgroundJob(work)
    assert job.start(1) is True
    assert job.start(2) is False  # clicking Start twice starts one job
    job.start_button.click()
    assert job.start_button.disabled and not job.stop_button.disabled
    job.stop_button.click()
    job.wait(5)
    assert runs == [1] and job.state == "stopped" and not job.running
    assert not job.start_button.disabled

    done = []
    job2 = BackgroundJob(lambda ctx: 42, on_done=done.append)
    job2.start()
    assert job2.wait(5) == 42 and done == [42] and job2.state == "done" and job2.progress.value == 1.0

    def boom(ctx):
        raise ll.data.DataError("bad frame", frame=3)

    job3 = BackgroundJob(boom)
    job3.start()
    job3.wait(5)
    assert job3.state == "failed" and "frame 3" in job3.error and "frame 3" in job3.status.value


def test_playback_panel_opens_a_trajectory_file_and_reports_bad_ones(tmp_path):
    from ase import Atoms
    from ase.io import write

    frames = [Atoms("H2", positions=[(0, 0, 0), (d, 0, 0)]) for d in np.linspace(2.0, 0.74, 6)]
    write(tmp_path / "t.extxyz", frames)
    lab = Lab(builtins=[])
    player = lab.playback.open_trajectory(tmp_path / "t.extxyz", timestep=1.0)
    assert player is not None and player.n_frames == 6 and lab.playback.box.children == (player,)
    assert [e["kind"] for e in player.events] == ["formed"]
    (tmp_path / "junk.xyz").write_text("not a trajectory\n")
    assert lab.playback.open_trajectory(tmp_path / "junk.xyz") is None
    assert "junk.xyz" in lab.playback.error and "Could not load" in lab.playback.message.value


def test_figures_reach_outputs_from_a_worker_thread_and_non_finite_numbers_serialize():
    """A job thread sets an Output's state (display() from a thread after the cell ended is dropped by the browser)."""
    import json

    import ipywidgets as w
    import plotly.graph_objects as go

    from lam_lab.ui._figures import PLOTLY_MIME, empty_figure, fmt, show_figure

    out = w.Output()
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[1.0, float("nan"), float("inf")], name="curve"), layout=dict(title="t"))
    th = threading.Thread(target=show_figure, args=(out, fig))
    th.start()
    th.join()
    assert len(out.outputs) == 1 and shown_titles(out) == ["t"]
    spec = out.outputs[0]["data"][PLOTLY_MIME]
    json.dumps(out.outputs, allow_nan=False)  # NaN/inf became null: the widget state is valid JSON
    assert spec["data"][0]["y"] == [1.0, None, None]
    empty = empty_figure("parity", "reference (eV/Å)", "model (eV/Å)", "after a run")
    assert empty.layout.xaxis.title.text == "reference (eV/Å)" and empty.layout.yaxis.title.text == "model (eV/Å)"
    show_figure(out, None)
    assert out.outputs == () and out.layout.display == "none"
    assert fmt(float("nan"), ".0f", "meV/Å") == "n/a" and fmt(None) == "n/a" and fmt(12.34, ".1f", "K") == "12.3 K"
    from types import SimpleNamespace

    from lam_lab.ui._live import metrics_html

    row = SimpleNamespace(name="a", head="h", n_frames=1, e_rmse=float("nan"), e_mae=1.0, e_std=float("nan"), f_rmse=2.0,
                          f_mae=1.0, f_std=0.0)
    table = metrics_html(SimpleNamespace(rows=[row], warmse_e=float("nan"), warmse_f=1.0))
    assert table.count("n/a") == 2 and "nan" not in table


def test_package_files_are_named_from_the_package_not_the_machine(tmp_path):
    from pathlib import Path

    from lam_lab.ui.data_panel import short_source

    inside = Path(ll.__file__).resolve().parent / "datasets" / "files" / "x.lamh5"
    assert short_source(str(inside)) == str(Path("lam_lab/datasets/files/x.lamh5"))
    assert short_source(str(tmp_path / "mine.xyz")) == str(tmp_path / "mine.xyz") and short_source(None) is None
