"""Voila dashboards (what ``make present NB=..`` serves) render their sliders and react, in Chromium.

For notebook 01 (01, 03, 06 and 08 with E2E_ALL=1; nbval runs every notebook and drives every
panel headless, see tests/notebook_checks.py): one Voila server per notebook on 127.0.0.1 with a
free port, stopped by its own process id; the panel's image must change after ArrowRight on its first
slider. Screenshots: artifacts/screenshots/voila_NN_x.png. Skipped when no ``chromium`` is on PATH.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if shutil.which("chromium") is None:
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

from e2e_support import (
    E2E_ALL,
    NOTEBOOK_DIR,
    REPO,
    RUN_TIMEOUT_S,
    Server,
    error_texts,
    first_panel,
    free_port,
    isolated_env,
    local_context,
    move_first_slider,
)

pytestmark = pytest.mark.e2e

# Those issue 7 names, and 03. Voila once hung on these at random (voila#1428); see
# helpers.widgets._Interactive for the cause and the fix.
DASHBOARDS = ["01", "03", "06", "08"]
# One by default: 01, what ``make present`` serves without NB=; E2E_ALL=1: all four.
SHOWN = DASHBOARDS if E2E_ALL else ["01"]


def _notebook(prefix):
    found = sorted(NOTEBOOK_DIR.glob(f"{prefix}_*.ipynb"))
    if not found:
        pytest.skip(f"no notebook {prefix}_*.ipynb in {NOTEBOOK_DIR} yet")
    return found[0]


def voila_command(notebook, port):
    voila = Path(sys.executable).with_name("voila")
    return [str(voila), str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True"]


@pytest.mark.parametrize("prefix", SHOWN)
def test_voila_dashboard_reacts(browser, screenshots, tmp_path, prefix):
    nb = _notebook(prefix)
    port = free_port()
    server = Server(voila_command(nb, port), isolated_env(tmp_path), nb.parent,
                    f"http://127.0.0.1:{port}", tmp_path / "voila.log")
    context = None
    try:
        server.wait_ready()
        context = local_context(browser, server.url)
        page = context.new_page()
        page.goto(server.url + "/", wait_until="commit")  # Voila streams cells as they run
        try:
            panel = first_panel(page, RUN_TIMEOUT_S)
        except Exception as e:
            raise AssertionError(f"{nb.name}: no slider beside an image in Voila; errors: "
                                 f"{error_texts(page)}\n{server.log()}") from e
        # Voila shows the cells only after the last one ran, then removes its spinner.
        page.locator("#loading").wait_for(state="detached", timeout=RUN_TIMEOUT_S * 1000)
        errors = error_texts(page)
        assert not errors, f"{nb.name} in Voila:\n" + "\n".join(errors)
        moved, before, after = move_first_slider(page, panel)
        assert after and after != before, f"{nb.name}: Voila figure unchanged after {moved}"
        panel.screenshot(path=screenshots / f"voila_{nb.stem}.png")
    finally:
        if context is not None:
            context.close()
        server.stop()


def test_make_present_picks_the_notebook_by_number():
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    found = sorted((REPO / "notebooks").glob(f"{DASHBOARDS[0]}_*.ipynb"))
    if not found:
        pytest.skip(f"no notebooks/{DASHBOARDS[0]}_*.ipynb yet")
    nb = found[0]
    # -n: print, do not run; -o setup: leave the environment alone.
    out = subprocess.run([make, "-n", "-s", "present", f"NB={DASHBOARDS[0]}", "-o", "setup"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert f"notebooks/{nb.name}" in out and "voila" in out, out
