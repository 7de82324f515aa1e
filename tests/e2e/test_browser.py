"""Notebooks in JupyterLab, in headless Chromium: Run All, no errors, a slider redraws the figure.

A representative subset (``LAB_NOTEBOOKS``; every notebook with E2E_ALL=1): nbval already runs all
twelve and drives every panel headless (tests/notebook_checks.py, which also writes the static
pages artifacts/html/NN_x.html); here what only a browser shows is checked: the widgets render,
Run All from the menu, presentation mode, a keyboard slider move redraws the image, and the
key back to the setting shown before brings its picture back from the panel's cache within
``REVISIT_LIMIT_S`` (measured in the page; written to artifacts/e2e_latency.json).
One JupyterLab server for the session (this environment's Python, 127.0.0.1, free port, token);
one page at a time; each notebook's kernel is shut down after its test. Screenshots go to
artifacts/screenshots/: ``NN_x.png`` (the panel after the slider move, in presentation mode),
``NN_x_before.png`` (before it) and ``NN_x_failure.png`` (whole page, only on failure).
Skipped as a whole when no ``chromium`` is on PATH.
"""
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

if shutil.which("chromium") is None:
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

from e2e_support import (
    NOTEBOOK_DIR,
    REVISIT_LIMIT_S,
    RUN_TIMEOUT_S,
    Server,
    error_texts,
    image_src,
    first_panel,
    free_port,
    isolated_env,
    local_context,
    move_first_slider,
    notebooks,
    record_latency,
    revisit_latency,
    write_json,
)

pytestmark = pytest.mark.e2e

KERNEL_IDLE = "Python 3 (ipykernel) | Idle"
HERE = Path(__file__).resolve().parent
# Lab settings for a quiet, deterministic page: no news/update pop-ups, every cell in the DOM.
SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # Never write the executed notebook back (the server refuses too: readonly_contents.py).
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}


class Lab(Server):
    def api(self, path, method="GET", body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, path):
        """Delete the sessions (and so the kernels) of the notebook at ``path``."""
        for s in self.api("/api/sessions"):
            if s.get("path") == path:
                self.api(f"/api/sessions/{s['id']}", method="DELETE")


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    env = isolated_env(tmp)
    # Lab reads <config dir>/labconfig/default_setting_overrides.json like an overrides.json.
    write_json(tmp / "jupyter_config_dir" / "labconfig" / "default_setting_overrides.json", SETTINGS)
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={NOTEBOOK_DIR}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
           "--ServerApp.contents_manager_class=readonly_contents.ReadOnlyContentsManager"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    server = Lab(cmd, env, NOTEBOOK_DIR, f"http://127.0.0.1:{port}", tmp / "jupyterlab.log")
    server.token = token
    try:
        server.wait_ready(f"/api/status?token={token}")
        news = server.api("/lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false", \
            "settings overrides were not read"
        docs = server.api("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        assert docs["schema"]["properties"]["autosave"]["default"] is False
        with pytest.raises(urllib.error.HTTPError, match="403"):  # the notebooks stay untouched
            server.api("/api/contents/e2e-write-probe.txt", "PUT",
                       {"type": "file", "format": "text", "content": "x"})
        assert not (NOTEBOOK_DIR / "e2e-write-probe.txt").exists()
        yield server
    finally:
        server.stop()


def _prompts(page):
    return page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _wait_until_run(page, timeout_s):
    """Wait until no cell is queued/running, every code cell ran (or one failed), kernel idle."""
    deadline, stable = time.monotonic() + timeout_s, 0
    status = page.locator(".jp-StatusBar-Widget").get_by_text(KERNEL_IDLE)
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        ran = all(any(ch.isdigit() for ch in p) for p in prompts)
        busy = any("*" in p for p in prompts)
        idle = status.count() > 0
        stable = stable + 1 if idle and not busy and (ran or error_texts(page)) else 0
        if stable >= 3:  # three polls in a row: the kernel really finished
            return
        time.sleep(0.5)
    raise AssertionError(f"notebook still running after {timeout_s} s; prompts {_prompts(page)}")


def _menu(page, *labels, command):
    for label in labels:
        page.locator(".lm-MenuBar-item, .lm-Menu-item").filter(
            has=page.get_by_text(label, exact=True)).first.click()
    page.locator(f'li.lm-Menu-item[data-command="{command}"]').click()


class Clock:
    """Seconds per phase of a test, for the report: where the suite's time goes."""

    def __init__(self):
        self.laps, self._last = {}, time.monotonic()

    def lap(self, name):
        now = time.monotonic()
        self.laps[name], self._last = now - self._last, now

    def __str__(self):
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.laps.items()) + \
            f"; total {sum(self.laps.values()):.1f} s"


def _presentation_mode(page):
    return page.locator(".jp-LabShell.jp-mod-presentationMode").count() == 1


# Different widget kinds, cheap notebooks: a model picker that changes the layer list, int
# sliders (01); a class list that follows the photo, float sliders (06); optimizations with
# progress bars, a log-scale slider, two panels (11).
LAB_NOTEBOOKS = ("01", "06", "11")
NOTEBOOKS = notebooks(LAB_NOTEBOOKS)


@pytest.mark.parametrize("nb", NOTEBOOKS or [None], ids=[p.stem for p in NOTEBOOKS] or ["none"])
def test_notebook_in_jupyterlab(lab, browser, screenshots, nb):
    if nb is None:
        pytest.skip(f"no notebooks in {NOTEBOOK_DIR}")
    assert not lab.api("/api/kernels"), "a kernel of an earlier notebook is still running"
    context = local_context(browser, lab.url)
    page = context.new_page()
    ok, clock = False, Clock()
    try:
        page.goto(f"{lab.url}/lab/workspaces/e2e-{nb.stem}/tree/{quote(nb.name)}"
                  f"?token={lab.token}")
        status = page.locator(".jp-StatusBar-Widget").get_by_text(KERNEL_IDLE)
        status.wait_for(timeout=180_000)
        assert page.locator(".jp-Dialog").count() == 0, "a dialog is blocking the notebook"
        clock.lap("open")

        _menu(page, "Run", command="runmenu:run-all")
        _wait_until_run(page, RUN_TIMEOUT_S)
        errors = error_texts(page)
        assert not errors, f"{nb.name}: a cell failed:\n" + "\n".join(errors)
        missed = [p for p in _prompts(page) if not any(ch.isdigit() for ch in p)]
        assert not missed, f"{nb.name}: {len(missed)} code cells did not run"
        clock.lap("run all")

        # What an instructor shows live: View > Appearance > Presentation Mode.
        _menu(page, "View", "Appearance", command="application:toggle-presentation-mode")
        assert _presentation_mode(page)
        try:
            panel = first_panel(page, 60)
        except Exception as e:
            raise AssertionError(f"{nb.name}: no widget panel with a slider beside an output "
                                 "image") from e
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=screenshots / f"{nb.stem}_before.png")
        started = time.monotonic()
        moved, before, after = move_first_slider(page, panel)
        first_s = time.monotonic() - started  # driver-side, polled: an upper bound
        assert after and after != before, f"{nb.name}: figure unchanged after moving {moved}"
        _wait_until_run(page, RUN_TIMEOUT_S)
        errors = error_texts(page)
        assert not errors, f"{nb.name}: error after moving {moved}:\n" + "\n".join(errors)
        clock.lap("slider")
        # One step further, then back: a setting shown before, on the slider's own grid (the
        # default may lie between grid points, as 8.0 does on a log slider), whose picture
        # must come back from the panel's cache at once.
        shown = image_src(panel)  # the finished picture, not a live preview of the run
        moved_on, _, _ = move_first_slider(page, panel)
        _wait_until_run(page, RUN_TIMEOUT_S)
        back = "ArrowLeft" if "ArrowRight" in moved_on else "ArrowRight"
        revisit_s = revisit_latency(page, panel, back, shown)
        record_latency(nb.stem, {"move": moved, "first_s": round(first_s, 3),
                                 "revisit_s": round(revisit_s, 4)})
        print(f"{nb.stem}: new setting {first_s:.2f} s (polled), revisit {revisit_s * 1000:.0f} ms")
        assert revisit_s < REVISIT_LIMIT_S, (f"{nb.name}: a setting shown before took "
                                             f"{revisit_s:.3f} s to come back")
        assert not error_texts(page)
        _wait_until_run(page, RUN_TIMEOUT_S)
        moved, _, after = move_first_slider(page, panel)  # and forward again, for the screenshot
        clock.lap("revisit")
        panel.screenshot(path=screenshots / f"{nb.stem}.png")
        _menu(page, "View", "Appearance", command="application:toggle-presentation-mode")
        assert not _presentation_mode(page)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(Exception):  # a courtesy: the test's own error matters
                page.screenshot(path=screenshots / f"{nb.stem}_failure.png", full_page=True)
        context.close()
        lab.shutdown_kernels(nb.name)
        clock.lap("rest")
        print(f"{nb.stem}: {clock}")  # shown with -s, or in the report of a failure
