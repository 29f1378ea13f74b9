"""The teaching notebooks run top to bottom (nbclient, small settings through environment variables)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {"LAM_LAB_NB_FRAMES": "12", "LAM_LAB_NB_MD_STEPS": "200", "OMP_NUM_THREADS": "1"}


def _run(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[nbformat.NotebookNode, float]:
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb, time.perf_counter() - start


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.output_type != "error", f"{o.get('ename')}: {o.get('evalue')}"
            out.append(o.get("text", "") if o.output_type == "stream" else str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def test_00_lab_opens_and_plays_the_demo(monkeypatch, tmp_path):
    nb, _ = _run("00_lab.ipynb", monkeypatch, tmp_path)
    text = _text(nb)
    assert "Lab(" in text and "101 frames" in text and "bond events" in text


def test_01_datasets_runs_top_to_bottom(monkeypatch, tmp_path):
    nb, _ = _run("01_datasets.ipynb", monkeypatch, tmp_path)
    text = _text(nb)
    assert "Dataset 'metals-mini': 12 frames" in text
    assert "largest energy difference after the round trip" in text
    assert "field positions" in text  # the broken file's message, shown in the panel
    assert "frames," in text and "events" in text and "frame shown:" in text
