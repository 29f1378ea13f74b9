"""`lam-lab pipeline` end to end with tiny settings: every stage's artefacts, the report, and the skip on re-run."""

from __future__ import annotations

import json
import re

import pytest

import lam_lab as ll
from lam_lab.pipeline import run_pipeline, tiny
from lam_lab.pipeline.config import load_pipeline_config
from lam_lab.pipeline.state import StageRecord, load_record, save_record, stage_key
from lam_lab.train.config import ConfigError


def test_config_scales_and_overrides(tmp_path):
    q = load_pipeline_config(None, "quick")
    assert q.scale == "quick" and q.finetune.sizes == [50]
    f = tmp_path / "p.yaml"
    f.write_text("finetune: {steps: 7}\nseed: 3\n")
    c = load_pipeline_config(f, "quick")
    assert c.finetune.steps == 7 and c.seed == 3 and c.finetune.sizes == [50]
    f.write_text("finetune: {stepz: 7}\n")
    with pytest.raises(ConfigError, match="finetune.stepz"):
        load_pipeline_config(f)


def test_stage_records_skip_only_when_unchanged(tmp_path):
    key = stage_key("data", {"sets": ["a"]}, [])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.json").write_text("{}")
    save_record(tmp_path, StageRecord("data", key, 1.0, {"x": "data/x.json"}, {"n": 1}))
    assert load_record(tmp_path, "data", key).skipped
    assert load_record(tmp_path, "data", stage_key("data", {"sets": ["b"]}, [])) is None
    (tmp_path / "data" / "x.json").unlink()  # a lost artefact makes the stage run again
    assert load_record(tmp_path, "data", key) is None


def test_a_rebuilt_builtin_set_changes_every_stage_key(tmp_path):
    from lam_lab.pipeline.state import builtin_fingerprint

    (tmp_path / "rxn.lamh5").write_bytes(b"first build")
    before = builtin_fingerprint([tmp_path])
    assert builtin_fingerprint([tmp_path]) == before and len(before) == 16
    (tmp_path / "rxn.lamh5").write_bytes(b"rebuilt with more reactions")
    after = builtin_fingerprint([tmp_path])
    assert after != before
    assert stage_key("data", {}, [], {"builtin": before}) != stage_key("data", {}, [], {"builtin": after})
    assert len(builtin_fingerprint()) == 16  # the shipped data sets and models


@pytest.mark.skipif("lam-chon-small" not in ll.pretrained.available(), reason="shipped model not built yet")
def test_tiny_pipeline_end_to_end(tmp_path):
    pytest.importorskip("lam_lab.finetune")
    pytest.importorskip("lam_lab.distill")
    logs: list[str] = []
    res = run_pipeline(tiny(), out=tmp_path, log=logs.append, progress=False)
    assert list(res.records) == ["data", "pretrain", "finetune", "distill", "md", "evaluate"]
    for rec in res.records.values():
        for path in rec.files.values():
            assert (tmp_path / path).exists(), path
    rounds = json.loads((tmp_path / res.records["distill"].files["rounds"]).read_text())
    assert "rattled copies" in rounds[0]["message"]  # the stage's rattle_copies reach the engine
    metrics = json.loads((tmp_path / res.records["evaluate"].files["metrics"]).read_text())
    assert {"zero_shot", "finetune", "student_vs_teacher", "speed"} <= set(metrics)
    there = metrics["student_vs_teacher_md_reaction"]  # scored where the student runs, on frames nobody trained on
    assert there["reaction"] == "diels-alder" and there["frames"] > 0
    assert [r["model"] for r in there["rows"]] == ["teacher", "student", "gfn2-xtb alone"]
    # the first selection scored apart from the extra rounds' hotter frames, for every row
    assert there["frames_first_selection"] + there["frames_extra_rounds"] == there["frames"]
    assert all(r["force_rmse_extra_rounds_mev_per_A"] > 0 for r in there["rows"])
    assert all(r["force_rmse_mev_per_A"] > 0 and 0.5 < r["barrier_ref_ev"] < 5 for r in metrics["finetune"])
    # GFN2-xTB alone on the same held-out frames, next to the models
    base = metrics["baseline"]
    assert base["method"] == "gfn2-xtb alone" and 100 < base["force_rmse_mev_per_A"] < 2000
    assert [r["model"] for r in metrics["student_vs_teacher"]][-1] == "gfn2-xtb alone"
    reactive = json.loads((tmp_path / res.records["md"].files["results"]).read_text())
    # the teacher runs from the same TS starts, so the report sets the student's fractions beside its teacher's
    assert len(reactive["teacher"]["outcomes"]) == len(reactive["xtb"]["outcomes"]) == len(reactive["outcomes"])
    assert reactive["shown_by"] in ("student", "teacher", "gfn2-xtb")
    page = res.report.read_text()
    assert "<script" in page and not re.search(r"<(script|link)[^>]+(src|href)=.?https?:", page)  # plotly inlined, offline
    for title in ("Data sets", "Multi-task pre-training", "held-out reaction", "Distillation", "Reactive MD", "Teacher: ends", "GFN2-xTB alone: ends"):
        assert title in page
    assert "tiny</b> settings" in page and page.count("gfn2-xtb alone") >= 3
    assert page.count("gfn2-xtb alone (RMSE") == 1 and "gfn2-xtb alone, offsets removed (RMSE" in page  # parity plots
    assert len(re.findall(r"Plotly\.newPlot", page)) >= 6
    # a second run finds every stage unchanged
    again = run_pipeline(tiny(), out=tmp_path, log=logs.append, progress=False)
    assert all(r.skipped for r in again.records.values())
    # changed settings re-run the stage into its own folders: the older runs move aside, nothing is refused
    changed = tiny()
    changed.finetune.steps += 1
    third = run_pipeline(changed, out=tmp_path, log=logs.append, progress=False)
    assert third.records["pretrain"].skipped and not third.records["finetune"].skipped
    assert not third.records["distill"].skipped
    assert list((tmp_path / "finetune" / "scratch-n20").glob("replaced-*/model.pt"))
