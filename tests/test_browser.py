"""The Lab in a real browser: JupyterLab + headless Chromium (Playwright) run notebook 00 and train from the Train tab.

Marked ``browser`` and part of the default run (``make test-browser`` runs only it). Uses Debian's Chromium at
/usr/bin/chromium — Playwright cannot download browsers here; as root with network it tries
``apt-get install -y chromium`` once, otherwise it skips with the reason.
"""

from __future__ import annotations

import io
import json
import os
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


@pytest.fixture
def jupyter(tmp_path):
    """JupyterLab on 127.0.0.1 (free port, random token) serving a copy of notebook 00; yields (url, token, dir)."""
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
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url="]
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
        yield url, token, work
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


def test_lab_notebook_trains_from_the_train_tab_and_draws(jupyter, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    url, token, _ = jupyter
    shots = tmp_path / "screenshots"
    shots.mkdir()
    console: list[str] = []
    with sync_api.sync_playwright() as p:
        # a fresh profile: Playwright refuses --user-data-dir in launch() and takes it here instead
        browser = p.chromium.launch_persistent_context(str(tmp_path / "chrome-profile"), executable_path=chromium,
                                                       headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(f"{url}/lab/tree/00_lab.ipynb?token={token}", wait_until="domcontentloaded", timeout=120_000)
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
            png = view.screenshot(path=str(shots / "02-player-canvas.png"))
            variance, colours = _canvas_stats(png)
            assert variance > 50 and colours > 20, f"the 3D player canvas looks blank: variance {variance}, {colours} colours"

            page.locator(".widget-tab .lm-TabBar-tab", has_text="Train").first.click()
            start = page.locator(".lam-train-panel button", has_text="Start").first
            start.wait_for(state="visible", timeout=30_000)
            start.click()
            points = _wait(page, _LOSS_POINTS, lambda n: n >= 2, 240, "points on the loss curve")
            page.locator(".lam-train-panel .js-plotly-plot").first.scroll_into_view_if_needed()
            time.sleep(1.0)
            page.screenshot(path=str(shots / "03-train-tab-curves.png"), full_page=True)
            text = page.inner_text("body")
            for bad in WIDGET_ERRORS:
                assert bad not in text, f"widget error on the page: {bad!r}"
            assert page.locator(".jupyter-widgets-error-widget").count() == 0
            assert "device:" in page.locator(".lam-train-panel").inner_text()
            assert points >= 2
        finally:
            browser.close()
    (shots / "console.log").write_text("\n".join(console))
    print(f"screenshots in {shots}")
