"""The Lab in a real browser: JupyterLab + headless Chromium (Playwright) run notebook 00, then every tab's main
action is started from its buttons after the cells have finished (as a user does), and its figures must arrive.

Marked ``browser`` and part of the default run (``make test-browser`` runs only it). Uses Debian's Chromium at
/usr/bin/chromium — Playwright cannot download browsers here; as root with network it tries
``apt-get install -y chromium`` once, otherwise it skips with the reason.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETTINGS = {  # JupyterLab user settings: no news/update checks, no autosave, every cell kept in the DOM
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
WIDGET_ERRORS = ("not registered", "Error displaying widget", "Failed to load model class", "Failed to create view")


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        try:
            urllib.request.urlopen("http://deb.debian.org", timeout=5)
        except OSError:
            pytest.skip(f"{CHROMIUM} is missing and there is no network to apt-get install chromium")
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900)
        if Path(CHROMIUM).exists():
            return CHROMIUM
        pytest.skip("apt-get install -y chromium did not provide /usr/bin/chromium")
    pytest.skip(f"{CHROMIUM} is missing and installing it needs root (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["lab", "notebook"], ids=["jupyterlab4", "notebook7"])
def jupyter(request, tmp_path):
    """JupyterLab 4 or Notebook 7 on 127.0.0.1 (free port, random token) serving a copy of notebook 00.

    Yields (url, token, dir, path): ``path`` is where that front end opens a notebook (``lab/tree`` or ``notebooks``).
    """
    lab = request.param == "lab"
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "00_lab.ipynb", work / "00_lab.ipynb")
    env = {**os.environ, "LAM_LAB_QUICK": "1", "OMP_NUM_THREADS": "1"}
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[var] = str(tmp_path / sub)
        (tmp_path / sub).mkdir()
    for rel, value in SETTINGS.items():
        f = tmp_path / "settings" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env.pop("JUPYTER_TOKEN", None)
    port, token = _free_port(), secrets.token_hex(16)
    app = "LabApp" if lab else "JupyterNotebookApp"
    cmd = [sys.executable, "-m", "jupyterlab" if lab else "notebook", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}", f"--{app}.expose_app_in_browser=True"]
    if lab:
        cmd.append("--LabApp.news_url=")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                assert time.time() < deadline, "JupyterLab did not answer:\n" + (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url, token, work, "lab/tree" if lab else "notebooks"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of its own process group left over
        except ProcessLookupError:
            pass
        log.close()


_STATE = """() => {
  const app = window.jupyterapp, w = app && app.shell && app.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent.trim());
  return {ready: !!(w && w.content && w.content.widgets), kernel: k ? k.status : null,
          busy: prompts.filter(p => p.includes('*')).length, prompts};
}"""
_LOSS_POINTS = """() => {
  const gd = document.querySelector('.lam-train-panel .js-plotly-plot');
  return gd && gd.data && gd.data.length ? (gd.data[0].x || []).length : 0;
}"""
# every plotly figure drawn inside a panel: title, traces, points, legend entries, axis titles, width vs the panel
_PLOTS = """(panel) => {
  const root = document.querySelector(panel);
  if (!root) return [];
  const full = root.getBoundingClientRect().width;
  return [...root.querySelectorAll('.js-plotly-plot')].map(gd => {
    const lay = gd._fullLayout || gd.layout || {};
    const axes = Object.keys(lay).filter(k => /^[xy]axis\\d*$/.test(k)).map(k => (lay[k].title && lay[k].title.text) || '');
    return {title: (lay.title && lay.title.text) || '', traces: (gd.data || []).length,
            points: (gd._fullData || gd.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0),
            legend: [...gd.querySelectorAll('.legendtext')].map(e => e.textContent), axes,
            width: (lay.width || gd.getBoundingClientRect().width) / full};  // what plotly drew, not its box
  });
}"""


def _wait(page, js, ok, timeout: float, what: str):
    deadline = time.time() + timeout
    while True:
        value = page.evaluate(js)
        if ok(value):
            return value
        assert time.time() < deadline, f"timed out waiting for {what}: {value}"
        time.sleep(0.5)


def _canvas_stats(png: bytes) -> tuple[float, int]:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    return float(img.mean(axis=2).var()), len({tuple(p) for p in img.reshape(-1, 3)[::7].astype(int)})


def _plots(page, panel: str) -> list[dict]:
    return page.evaluate(_PLOTS, panel)


def _tab(page, title: str, panel: str) -> None:
    page.locator(".widget-tab .lm-TabBar-tab", has_text=title).first.click()
    page.locator(panel).first.wait_for(state="visible", timeout=30_000)
    time.sleep(0.5)


def _click(page, panel: str, text: str) -> None:
    button = page.locator(f"{panel} button", has_text=text).first
    button.wait_for(state="visible", timeout=30_000)
    button.click()


_JOB_STATUS = """([panel, label]) => {
  const b = [...document.querySelectorAll(panel + ' button')].find(e => e.textContent.trim() === label);
  const ls = b && b.parentElement ? [...b.parentElement.querySelectorAll('.widget-label')] : [];
  return ls.length ? ls[ls.length - 1].textContent : '';  // the status Label comes after the progress bar's own
}"""


def _done(page, panel: str, button: str, timeout: float) -> str:
    """Wait until the job started by ``button`` says done (failed or stopped: the test fails with its text)."""
    status = _wait(page, lambda_js(_JOB_STATUS, [panel, button]),
                   lambda t: t.startswith(("done", "failed")) or t == "stopped", timeout, f"the job of {panel}")
    assert status.startswith("done"), f"{panel}: {status}"  # "done" or "done: <what came of it>"
    return status


def _shot(page, shots: Path, name: str, panel: str) -> None:
    """A PNG of one panel (the README's screenshots)."""
    page.locator(panel).first.scroll_into_view_if_needed()
    time.sleep(1.0)
    page.locator(panel).first.screenshot(path=str(shots / name))


def _run_notebook(page, url: str, token: str, path: str, shots: Path) -> None:
    """Open notebook 00, run every cell, and check the 3D player drew a molecule."""
    page.goto(f"{url}/{path}/00_lab.ipynb?token={token}", wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    _wait(page, _STATE, lambda s: s["ready"] and s["kernel"] == "idle", 120, "the kernel")
    page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    time.sleep(1.0)
    state = _wait(page, _STATE, lambda s: s["busy"] == 0 and s["kernel"] == "idle", 300, "the cells")
    assert all(pr not in ("[*]:", "[ ]:") for pr in state["prompts"][:2]), state
    page.wait_for_selector("canvas.llrp-view", state="visible", timeout=60_000)
    time.sleep(1.0)
    page.screenshot(path=str(shots / "01-notebook-run.png"), full_page=True)
    view = page.locator("canvas.llrp-view").first
    view.scroll_into_view_if_needed()
    png = view.screenshot(path=str(shots / "lab-player-canvas.png"))
    variance, colours = _canvas_stats(png)
    assert variance > 50 and colours > 20, f"the 3D player canvas looks blank: variance {variance}, {colours} colours"
    _shot(page, shots, "lab_playback.png", ".lam-md-panel .llrp")


def _data_tab(page, shots: Path) -> None:
    """Data: Load, then Compare with a second set (densities, both sets in the legend)."""
    data = ".lam-data-panel"
    _tab(page, "Data", data)
    _click(page, data, "Load")
    plots = _wait(page, lambda_js(_PLOTS, data), lambda ps: len([q for q in ps if q["points"]]) >= 3, 60, "the Data plots")
    page.locator(f"{data} input[placeholder^='compare with']").fill("rxn-dft")
    _click(page, data, "Compare")
    plots = _wait(page, lambda_js(_PLOTS, data), lambda ps: sum(len(set(q["legend"])) >= 2 for q in ps) >= 3, 60,
                  "the comparison (coverage bars and both histograms with two sets)")
    hists = [q for q in plots if q["title"].startswith(("energy per atom", "force magnitude"))]
    assert len(hists) == 2 and all(len(set(q["legend"])) == 2 for q in hists), hists
    assert all(any("density" in a for a in q["axes"]) for q in hists), hists
    _shot(page, shots, "data_panel.png", data)


def _train_tab(page, shots: Path) -> None:
    """Train: Start, live curves, done; the model is offered to the other tabs, not selected."""
    train = ".lam-train-panel"
    _tab(page, "Train", train)
    _click(page, train, "Start")
    points = _wait(page, _LOSS_POINTS, lambda n: n >= 2, 240, "points on the loss curve")
    assert points >= 2 and "device:" in page.locator(train).inner_text()
    _done(page, train, "Start", 240)
    assert "validating on 3" in page.locator(train).inner_text()  # 8 frames: 5 train, 3 validate
    _shot(page, shots, "lab-train-tab.png", train)


def _finetune_tab(page, shots: Path) -> None:
    """Fine-tune · Δ: the offer is visible, the choice unchanged; Start draws parity + comparison."""
    ft = ".lam-finetune-panel"
    _tab(page, "Fine-tune · Δ", ft)
    offer = page.locator(f"{ft} .lam-model-offer").first
    assert offer.is_visible() and "New:" in offer.inner_text() and "from Train" in offer.inner_text()
    assert "uses lam-chon-small" in page.locator(ft).inner_text()
    before = [q["title"] for q in _plots(page, ft)]
    assert sum(t.endswith("(test split)") for t in before) == 2, before  # placeholder axes before Start
    page.locator(f"{ft} button", has_text="Δ on GFN2-xTB").first.click()
    _click(page, ft, "Start")
    _done(page, ft, "Start", 300)
    plots = _wait(page, lambda_js(_PLOTS, ft), lambda ps: sum("RMSE" in q["title"] and q["points"] > 0 for q in ps) >= 2
                  and any(q["title"].startswith("Learning") and q["points"] > 0 for q in ps), 60, "parity and comparison")
    parity = [q for q in plots if "(test split)" in q["title"]]  # GFN2-xTB alone beside the model, in the table too
    assert len(parity) == 2 and all("GFN2-xTB alone" in " ".join(q["legend"]) for q in parity), parity
    assert "GFN2-xTB alone" in page.locator(ft).inner_text()
    for q in plots:  # no figure at plotly's default 700 px in a wider panel, no untitled axis
        assert q["width"] > (0.9 if "loss" in q["axes"] or q["title"].startswith("Learning") else 0.45), q
        assert all(q["axes"]), q
    _shot(page, shots, "lab-finetune-tab.png", ft)


def _distill_tab(page, shots: Path) -> None:
    """Distill: Start; per-round chart and the speed-up."""
    di = ".lam-distill-panel"
    _tab(page, "Distill", di)
    assert "New:" in page.locator(f"{di} .lam-model-offer").first.inner_text()  # Δ (1) offered
    _click(page, di, "Start")
    _done(page, di, "Start", 300)
    _wait(page, lambda_js(_PLOTS, di), lambda ps: any(q["points"] >= 2 for q in ps), 60, "the round chart")
    assert "faster" in page.locator(di).inner_text()
    _shot(page, shots, "lab-distill-tab.png", di)


def _md_tab(page, shots: Path) -> None:
    """MD: Run MD; live energy/temperature, the player and the committee's uncertainty."""
    md = ".lam-md-panel"
    _tab(page, "MD", md)
    # the default start (Diels–Alder from its verified GFN2-xTB TS) with the default 300 steps (quick mode: 60,
    # too short to arrive): the run from the button reacts and the status line says so in words
    steps = page.locator(f"{md} .widget-inline-hbox").filter(has=page.locator("label", has_text=re.compile("^steps$")))
    steps.locator("input").first.fill("300")
    steps.locator("input").first.press("Enter")
    time.sleep(1.0)
    _click(page, md, "Run MD")
    status = _done(page, md, "Run MD", 240)
    assert status.startswith("done: reached the product") or status.startswith("done: reached the reactant"), status
    plots = _wait(page, lambda_js(_PLOTS, md), lambda ps: any(q["points"] >= 10 for q in ps), 60, "the live MD plot")
    assert {"potential energy", "total energy", "temperature"} <= {t for q in plots for t in q["legend"]}
    text = page.locator(md).inner_text()
    assert "drift" not in text  # Langevin: no total-energy drift line
    assert "from the transition state of diels-alder" in text  # the default start: a verified TS
    _click(page, md, "Uncertainty")  # committee: two heads of the shipped model on the played frames
    _done(page, md, "Uncertainty", 180)
    colour = page.locator(f"{md} select.llrp-colorby").first
    assert colour.is_visible() and colour.input_value() == "values"
    assert "largest disagreement" in page.locator(md).inner_text()
    _shot(page, shots, "lab-md-tab.png", md)


def _label_frames(page, shots: Path) -> None:
    """MD · Uncertainty: *Label these frames* sends the most uncertain frame to DFT (PySCF) and GFN2-xTB; the Δ set
    it grows is offered to Fine-tune · Δ (not selected there)."""
    md, ft = ".lam-md-panel", ".lam-finetune-panel"
    k = page.locator(f"{md} .widget-inline-hbox").filter(has=page.locator("label", has_text=re.compile("^frames$")))
    k.locator("input").first.fill("1")
    k.locator("input").first.press("Enter")
    time.sleep(1.0)
    _click(page, md, "Label these frames")
    _done(page, md, "Label these frames", 600)
    assert "1 of 1 frames labelled with wb97x/6-31g* and GFN2-xTB" in page.locator(md).inner_text()
    _tab(page, "Fine-tune · Δ", ft)
    down = page.locator(f"{ft} .widget-inline-hbox").filter(has=page.locator("label", has_text=re.compile("^downstream$")))
    options = down.locator("select").first.evaluate("e => [...e.options].map(o => o.text.replace(/\\u00a0/g, ' '))")
    assert "rxn-dft + uncertain frames (1)" in options, options  # joined to the built-in Δ set
    assert down.locator("select").first.evaluate("e => e.options[e.selectedIndex].text") == "rxn-dft"
    assert "New data set: rxn-dft + uncertain frames (1)" in page.locator(ft).inner_text()


def _no_widget_errors(page) -> None:
    """No widget failed to render anywhere on the page."""
    text = page.inner_text("body")
    for bad in WIDGET_ERRORS + ("not JSON compliant",):
        assert bad not in text, f"widget error on the page: {bad!r}"
    assert page.locator(".jupyter-widgets-error-widget").count() == 0


def test_lab_tabs_run_from_their_buttons_and_draw(jupyter, tmp_path):
    """Notebook 00 runs; then, with every cell finished, each tab's buttons are clicked and its plots must arrive."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    url, token, _, path = jupyter
    shots = Path(os.environ.get("LAM_LAB_SHOTS", tmp_path / "screenshots"))
    if path != "lab/tree":  # the README's screenshots are JupyterLab's; Notebook 7's go beside them
        shots = shots / "notebook7"
    shots.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    with sync_api.sync_playwright() as p:
        # a fresh profile: Playwright refuses --user-data-dir in launch() and takes it here instead
        browser = p.chromium.launch_persistent_context(str(tmp_path / "chrome-profile"), executable_path=chromium,
                                                       headless=True, args=FLAGS, viewport={"width": 1400, "height": 2600})  # tall: each panel fits for its screenshot
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            _run_notebook(page, url, token, path, shots)
            steps = [_data_tab, _train_tab, _finetune_tab, _distill_tab, _md_tab]  # in order: each uses the last
            if path == "lab/tree":  # DFT on one frame: once, in JupyterLab
                steps.append(_label_frames)
            for tab in steps:
                tab(page, shots)
            _no_widget_errors(page)
        finally:
            (shots / "console.log").write_text("\n".join(console))
            browser.close()
    print(f"screenshots in {shots}")


def lambda_js(fn: str, arg: object = None) -> str:
    """A page function: ``fn`` (JS source of a one-argument function) applied to ``arg`` (JSON)."""
    return f"() => ({fn})({json.dumps(arg)})"
