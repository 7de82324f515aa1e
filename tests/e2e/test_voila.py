"""Voila dashboards (what ``make present NB=..`` serves) render their sliders and react, in Chromium.

For notebook 01 (01, 03, 06 and 08 with E2E_ALL=1; nbval runs every notebook and drives every
panel headless, see tests/notebook_checks.py): one Voila server per notebook on 127.0.0.1 with a
free port, stopped by its own process id; the panel's image must change after ArrowRight on its first
slider. Screenshots: artifacts/screenshots/voila_NN_x.png. Skipped when no ``chromium`` is on PATH.
"""
import contextlib
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


@contextlib.contextmanager
def _dashboard(browser, nb, tmp_path):
    """A Voila server for ``nb`` and a page opening it; yields (server, page), closes both."""
    port = free_port()
    server = Server(voila_command(nb, port), isolated_env(tmp_path), nb.parent,
                    f"http://127.0.0.1:{port}", tmp_path / "voila.log")
    context = None
    try:
        server.wait_ready()
        context = local_context(browser, server.url)
        page = context.new_page()
        page.goto(server.url + "/", wait_until="commit")  # Voila streams cells as they run
        yield server, page
    finally:
        if context is not None:
            context.close()
        server.stop()


@pytest.mark.parametrize("prefix", SHOWN)
def test_voila_dashboard_reacts(browser, screenshots, tmp_path, prefix):
    nb = _notebook(prefix)
    with _dashboard(browser, nb, tmp_path) as (server, page):
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


def _upload(page, button, path):
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(str(path))


def test_voila_upload_becomes_the_panels_photo(browser, screenshots, tmp_path):
    """Notebook 03 in Voila: a text file is refused with its reason; a photo becomes ``upload 1``
    of the photo picker and the panel redraws with it (the shared upload under every picker)."""
    from PIL import Image, ImageDraw

    nb = _notebook("03")
    photo = tmp_path / "stripes.png"
    image = Image.new("RGB", (300, 200), "white")
    for x in range(0, 300, 20):
        ImageDraw.Draw(image).line([(x, 0), (x, 199)], fill="black", width=3)
    image.save(photo)
    (tmp_path / "notes.txt").write_text("not a photo")
    with _dashboard(browser, nb, tmp_path) as (_, page):
        panel = first_panel(page, RUN_TIMEOUT_S)
        page.locator("#loading").wait_for(state="detached", timeout=RUN_TIMEOUT_S * 1000)
        button = panel.query_selector(".widget-upload")
        assert button is not None, f"{nb.name}: no upload button in the panel"
        before = panel.query_selector(".widget-output img").get_attribute("src")
        _upload(page, button, tmp_path / "notes.txt")
        page.wait_for_function("el => el.innerText.includes('not an image file')", arg=panel,
                               timeout=60_000)
        _upload(page, button, photo)
        page.wait_for_function(
            "([el, before]) => { const img = el.querySelector('.widget-output img');"
            " return img && img.getAttribute('src') !== before; }", arg=[panel, before],
            timeout=RUN_TIMEOUT_S * 1000)
        assert panel.query_selector("select").evaluate("s => s.value") == "upload 1"
        assert "loaded as upload 1" in panel.inner_text()
        assert not error_texts(page)
        panel.screenshot(path=screenshots / f"voila_{nb.stem}_upload.png")
