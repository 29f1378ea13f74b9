"""ReactionPlayer traits (frames, per-frame bonds, events, traces) and that its front-end files ship."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from lam_lab.data import DataError
from lam_lab.md.analysis import analyze_bonds, distance_series
from lam_lab.ui.player import ReactionPlayer, widget_asset

ROOT = Path(__file__).resolve().parents[1]


def _h2_then_h_transfer() -> np.ndarray:
    """H3 line: H1 bonds to H0 early, then leaves H0 for H2 (one formed, one broken, one formed)."""
    t = 30
    pos = np.zeros((t, 3, 3))
    pos[:, 2, 0] = 2.2
    x = np.concatenate([np.linspace(-1.5, 0.74, 10), np.full(5, 0.74), np.linspace(0.74, 1.46, 10), np.full(5, 1.46)])
    pos[:, 1, 0] = x
    return pos


def test_traits_follow_the_analysis():
    pos = _h2_then_h_transfer()
    player = ReactionPlayer(pos, numbers=[1, 1, 1], timestep=2.0, title="H transfer")
    ref = analyze_bonds(pos, numbers=[1, 1, 1], timestep=2.0)
    assert player.n_frames == 30 and player.n_atoms == 3
    assert len(player.positions) == 30 * 3 * 3 * 4  # float32
    np.testing.assert_allclose(np.frombuffer(player.positions, dtype=np.float32).reshape(30, 3, 3), pos, atol=1e-6)
    assert player.bonds == [b.reshape(-1).tolist() for b in ref.bonds]
    assert [(e["kind"], e["i"], e["j"], e["frame"]) for e in player.events] == [
        (e.kind, e.i, e.j, e.frame) for e in ref.events]
    kinds = [(e["kind"], e["i"], e["j"]) for e in player.events]
    assert kinds[0] == ("formed", 0, 1) and ("broken", 0, 1) in kinds and ("formed", 1, 2) in kinds
    assert player.times == pytest.approx(list(np.arange(30) * 2.0)) and player.time_unit == "fs"
    assert player.energies == [] and player.title == "H transfer"
    # the distance trace follows the atoms of the events by default
    assert set(player.distances) == {"H0–H1", "H1–H2"}
    assert player.distances["H0–H1"][12] == pytest.approx(0.74)
    assert player.atom_colors[0] == "#ffffff" and len(player.atom_radii) == 3


def test_frame_is_synced_clamped_and_drives_bonds_and_events():
    player = ReactionPlayer(_h2_then_h_transfer(), numbers=[1, 1, 1])
    formed = player.events[0]["frame"]
    player.seek(formed)
    assert player.frame == formed and player.bonds_at() == {(0, 1)}
    assert [e["kind"] for e in player.events_near()] == ["formed"]
    assert player.bonds_at(0) == set() and player.bonds_at(29) == {(1, 2)}
    player.frame = 1000
    assert player.frame == 29
    player.frame = -5
    assert player.frame == 0
    player.play(fps=20)
    assert player.playing and player.fps == 20
    player.pause()
    assert not player.playing


def test_energies_from_atoms_and_explicit_traces():
    frames = []
    for k, d in enumerate(np.linspace(2.0, 0.74, 8)):
        a = Atoms("H2", positions=[(0, 0, 0), (d, 0, 0)])
        a.calc = SinglePointCalculator(a, energy=-float(k))
        frames.append(a)
    player = ReactionPlayer(frames)
    assert player.energies == pytest.approx([-float(k) for k in range(8)])  # relative to frame 0 (= 0 here)
    absolute = ReactionPlayer(frames, energies=np.arange(8) + 10.0, relative=False, distances=[(0, 1)])
    assert absolute.energies[0] == 10.0 and absolute.energy_label == "E (eV)"
    assert absolute.distances["H0–H1"] == pytest.approx(list(np.linspace(2.0, 0.74, 8)))
    named = ReactionPlayer(frames, distances={"r": np.linspace(2.0, 0.74, 8)})
    assert list(named.distances) == ["r"]
    series = distance_series(frames, [(0, 1)])
    assert list(ReactionPlayer(frames, distances=series).distances) == ["H0–H1"]
    with pytest.raises(DataError, match="energies"):
        ReactionPlayer(frames, energies=[1.0, 2.0])
    with pytest.raises(DataError, match="distance"):
        ReactionPlayer(frames, distances={"r": [1.0]})


def test_periodic_trajectory_sends_cells():
    a = Atoms("H2", positions=[(0.2, 5, 5), (9.6, 5, 5)], cell=[10, 10, 10], pbc=True)
    player = ReactionPlayer([a, a.copy()])
    assert player.pbc == [True, True, True] and len(player.cells) == 2 * 9 * 4
    assert player.bonds == [[0, 1], [0, 1]]


def test_js_and_css_assets_are_found():
    js, css = widget_asset("reaction_player.js"), widget_asset("reaction_player.css")
    assert js.read_text() == (ROOT / "widgets" / "reaction_player.js").read_text()
    assert "export default" in ReactionPlayer._esm and "render" in ReactionPlayer._esm
    assert ".llrp" in ReactionPlayer._css and css.is_file()
    for trait in ("frame", "positions", "bonds", "events", "energies", "distances", "playing", "fps"):
        assert f'"{trait}"' in ReactionPlayer._esm, trait  # every synced trait the JS reads exists
    with pytest.raises(FileNotFoundError, match="looked in"):
        widget_asset("nope.js")


def test_wheel_ships_the_widget_files(tmp_path):
    """Build a wheel from a copy of the sources: the player's JS/CSS must be inside lam_lab/ui/static."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "lam_lab", src / "lam_lab", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "widgets", src / "widgets", ignore=ignore)
    code = "from setuptools import build_meta as b; print(b.build_wheel(r'%s'))" % (tmp_path / "dist")
    out = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = tmp_path / "dist" / out.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert "lam_lab/ui/static/reaction_player.js" in names and "lam_lab/ui/static/reaction_player.css" in names


# -- the ES module itself, in headless Chromium (pytest -m browser) --------------------------------
_HARNESS = """
async ({js, css, state, buffers}) => {
  for (const [k, b64] of Object.entries(buffers)) {
    const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    state[k] = new DataView(raw.buffer);
  }
  const handlers = {};
  const model = {
    saved: 0,
    get: (k) => state[k],
    set: (k, v) => { const old = state[k]; state[k] = v; if (old !== v) (handlers["change:" + k] || []).forEach((f) => f()); },
    on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
    off: (e, f) => { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
    save_changes() { this.saved += 1; },
  };
  const style = document.createElement("style"); style.textContent = css; document.head.appendChild(style);
  const el = document.createElement("div"); el.style.width = "1000px"; document.body.appendChild(el);
  const mod = await import(URL.createObjectURL(new Blob([js], {type: "text/javascript"})));
  mod.default.render({model, el});
  window.__model = model;
  await new Promise((r) => setTimeout(r, 300));
}
"""


def _colours(page, cls: str) -> int:
    return page.evaluate(f"""() => {{
      const c = document.querySelector('canvas.{cls}'), ctx = c.getContext('2d');
      const d = ctx.getImageData(0, 0, c.width, c.height).data, seen = new Set();
      for (let k = 0; k < d.length; k += 16) seen.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
      return seen.size;
    }}""")


@pytest.mark.browser
def _eventually(check, timeout: float = 15.0, every: float = 0.05) -> None:
    """Poll ``check()`` until it is true; fail with the last value after ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return
        if time.monotonic() > end:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(every)


def test_player_module_draws_scrubs_jumps_and_plays(tmp_path):
    """Render the ES module with a stand-in model: non-blank canvases, trace scrub, event click, playback."""
    import base64
    import os

    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = next((p for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")) if p and Path(p).exists()), None)
    if chromium is None:
        pytest.skip("no Chromium")
    pos = _h2_then_h_transfer()
    player = ReactionPlayer(pos, numbers=[1, 1, 1], timestep=2.0, energies=np.sin(np.arange(30) / 5.0))
    state = {k: v for k, v in player.get_state().items() if not isinstance(v, (bytes, memoryview))}
    buffers = {k: base64.b64encode(bytes(getattr(player, k))).decode() for k in ("positions", "cells")}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.set_content("<html><body></body></html>")
        page.evaluate(_HARNESS, {"js": player._esm, "css": player._css, "state": state, "buffers": buffers})
        # every check waits for the rendered state (animation frames lag under load) instead of reading at once
        _eventually(lambda: _colours(page, "llrp-view") > 50 and _colours(page, "llrp-plot") > 20)  # not blank
        box = page.locator("canvas.llrp-plot").bounding_box()
        # the time axis spans the canvas between 58 px (left margin) and width - 12 px
        page.mouse.click(box["x"] + 58 + 0.5 * (box["width"] - 70), box["y"] + 40)
        _eventually(lambda: abs(page.evaluate("window.__model.get('frame')") - 14) <= 1)
        event = player.events[-1]
        page.locator(".llrp-event").nth(len(player.events) - 1).click()
        _eventually(lambda: page.evaluate("window.__model.get('frame')") == event["frame"])
        _eventually(lambda: f"frame {event['frame'] + 1}/30" in page.locator(".llrp-readout").inner_text())
        page.evaluate("window.__model.set('frame', 0)")
        page.locator(".llrp-btn").nth(2).click()  # play
        _eventually(lambda: page.evaluate("window.__model.get('playing')") and page.evaluate("window.__model.get('frame')") >= 4)
        page.locator(".llrp-btn").nth(2).click()  # pause
        _eventually(lambda: not page.evaluate("window.__model.get('playing')"))
        browser.close()
