"""Shared machinery of the real-browser tests: servers, headless Chromium, page helpers.

The fixtures are re-exported by conftest.py.
Every server (JupyterLab, Voila) runs from this Python's environment on 127.0.0.1 with a free port,
in its own process group, with Jupyter's and matplotlib's files in temporary folders; it is stopped
by its own process id in a ``finally``, also when a test fails.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Which notebooks to drive: every notebooks/*.ipynb; E2E_NOTEBOOK_DIR points elsewhere (development).
NOTEBOOK_DIR = Path(os.environ.get("E2E_NOTEBOOK_DIR", REPO / "notebooks")).resolve()
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: a notebook may take 60 s on a laptop CPU, more on a loaded CI machine.
RUN_TIMEOUT_S = float(os.environ.get("E2E_RUN_TIMEOUT", "420"))
REDRAW_TIMEOUT_S = float(os.environ.get("E2E_REDRAW_TIMEOUT", "120"))
# An error output (ipykernel tracebacks, also SyntaxError, which has no "Traceback" line).
ERROR_TEXT = re.compile(r"Traceback|^\s*\w*(Error|Exception)\b", re.MULTILINE)


# nbval runs all twelve notebooks and drives every panel headless (tests/notebook_checks.py);
# the browser checks what only a browser shows on a representative subset. E2E_ALL=1: all.
E2E_ALL = os.environ.get("E2E_ALL", "") not in ("", "0")


def notebooks(subset=None):
    """The notebooks to drive: those whose names start with a prefix in ``subset``, or every
    notebook when ``subset`` is None or E2E_ALL=1."""
    found = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if subset is None or E2E_ALL:
        return found
    return [p for p in found if p.name.split("_", 1)[0] in subset]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(tmp):
    """os.environ with this environment's bin first and Jupyter/matplotlib state under ``tmp``."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                "MPLCONFIGDIR"):
        path = Path(tmp) / var.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env.pop("JUPYTER_PATH", None)
    return env


# The server gets SIGTERM when the test process dies, even by SIGKILL (util-linux, Linux).
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []


class Server:
    """A Jupyter-style server in its own process group; ``stop`` kills that group."""

    def __init__(self, cmd, env, cwd, url, log_path):
        self.url, self.log_path = url, Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(DIE_WITH_PARENT + list(cmd), env=env, cwd=cwd,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self, tail=4000):
        return self.log_path.read_text(errors="replace")[-tail:]

    def wait_ready(self, probe_path=None, timeout=180):
        """Wait until ``probe_path`` answers 200 (or, without one, the port accepts connections)."""
        host, port = self.url.rsplit("/", 1)[-1].split(":")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if probe_path is None:
                    socket.create_connection((host, int(port)), timeout=5).close()
                    return self
                with urllib.request.urlopen(self.url + probe_path, timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log()}")

    def stop(self):
        """SIGTERM to the server's process group, SIGKILL if it lingers; then its kernels.

        Kernels run in sessions of their own, so they are found as the server's children first.
        """
        import psutil

        try:
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=20)
            for child in children:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        finally:
            self._log.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # A CI timeout's SIGTERM becomes an interrupt, so every ``finally`` stops its server.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS,
                              headless=True)
        try:
            yield b
        finally:
            b.close()
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# ---------------------------------------------------------------- page helpers (Lab and Voila)

def local_context(browser, base_url):
    """A fresh browser context that may only reach ``base_url`` (offline, and no DNS waits)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route(lambda url: not url.startswith(base_url), lambda route: route.abort())
    return context


def error_texts(scope):
    """Texts of error outputs (tracebacks on stderr, error outputs) inside ``scope``.

    ``scope`` is a page or an element handle.
    """
    found = scope.query_selector_all('[data-mime-type="application/vnd.jupyter.stderr"], '
                                     '[data-mime-type="application/vnd.jupyter.error"]')
    return [t for t in (el.inner_text() for el in found) if ERROR_TEXT.search(t)]


def first_panel(page, timeout_s):
    """The output area holding the first widget slider that sits beside an output image."""
    panel = page.locator(".jp-OutputArea-output:has(.widget-slider):has(.widget-output img)").first
    panel.wait_for(state="visible", timeout=timeout_s * 1000)
    return panel.element_handle()  # fixed element: the locator stops matching if the image goes


def image_src(panel):
    """src of the first image in the panel's Output widget (None when it shows none)."""
    img = panel.query_selector(".widget-output img")
    return img.get_attribute("src") if img else None


def move_first_slider(page, panel, timeout_s=REDRAW_TIMEOUT_S):
    """Press an arrow key on the panel's first slider and wait until its image changes.

    Returns (description of the move, src before, src after); raises AssertionError when the
    panel shows an error or its image stays the same. Uses ArrowRight, or ArrowLeft when the
    slider already sits at its maximum.
    """
    handle = panel.query_selector(".widget-slider .noUi-handle")
    label = panel.query_selector(".widget-slider .widget-label").inner_text()
    before = image_src(panel)
    value, vmax = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if value is not None and value == vmax else "ArrowRight"
    handle.scroll_into_view_if_needed()
    # Rendered means visible and on top: nothing (such as the figure) covers the handle.
    on_top = handle.evaluate("h => { const r = h.getBoundingClientRect();"
                             " const hit = document.elementFromPoint(r.x + r.width / 2,"
                             " r.y + r.height / 2); return r.width > 0 && h.contains(hit); }")
    assert on_top, f"slider {label!r} is hidden or covered by another element"
    handle.focus()
    handle.press(key)
    try:
        page.wait_for_function(  # until the image changes or the panel shows an error
            "([el, before, pattern]) => { const img = el.querySelector('.widget-output img');"
            " const err = new RegExp(pattern, 'm');"
            " return (img && img.getAttribute('src') !== before) || Array.from("
            "el.querySelectorAll('[data-mime-type=\"application/vnd.jupyter.stderr\"]'))"
            ".some(o => err.test(o.innerText)); }",
            arg=[panel, before, ERROR_TEXT.pattern], timeout=timeout_s * 1000, polling=250)
    except Exception as e:
        raise AssertionError(f"image unchanged {timeout_s} s after {key} on slider {label!r}; "
                             f"errors on the page: {error_texts(page)}") from e
    readout = panel.query_selector(".widget-slider .widget-readout").inner_text()
    moved = f"slider {label!r} {value} -> {readout} ({key})"
    errors = error_texts(panel)
    assert not errors, f"error after moving {moved}:\n" + "\n".join(errors)
    return moved, before, image_src(panel)


# A revisit (a setting shown before) comes from the panel's picture cache: the goal is 0.1 s
# from the key press to the picture on screen. Asserted with room for a loaded CI machine;
# the measured number is printed and written to artifacts/e2e_latency.json.
REVISIT_LIMIT_S = float(os.environ.get("E2E_REVISIT_LIMIT", "0.25"))
LATENCY_JSON = REPO / "artifacts" / "e2e_latency.json"

_TIME_UNTIL_SHOWN = """([el, target]) => {
  window.__e2eLatency = null;
  let start = null, done = false;
  el.addEventListener('keydown', () => { start = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const img = el.querySelector('.widget-output img');
    if (done || start === null || !img || img.getAttribute('src') !== target) return;
    done = true;
    observer.disconnect();
    // On screen: decoded, then the next frame painted.
    img.decode().catch(() => null).then(() => requestAnimationFrame(() => {
      window.__e2eLatency = performance.now() - start; }));
  });
  observer.observe(el, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def revisit_latency(page, panel, key, target_src, timeout_s=REDRAW_TIMEOUT_S):
    """Seconds from pressing ``key`` on the panel's first slider until ``target_src`` shows.

    Measured in the page (performance.now() at the keydown, then when the image with that src
    is decoded and painted), so the test driver's own round trips do not count.
    """
    handle = panel.query_selector(".widget-slider .noUi-handle")
    page.evaluate(_TIME_UNTIL_SHOWN, [panel, target_src])
    handle.focus()
    handle.press(key)
    try:
        page.wait_for_function("() => window.__e2eLatency !== null", timeout=timeout_s * 1000,
                               polling=50)
    except Exception as e:
        raise AssertionError(f"the earlier picture did not come back {timeout_s} s after {key}; "
                             f"errors on the page: {error_texts(page)}") from e
    return page.evaluate("() => window.__e2eLatency") / 1000


def record_latency(name, values):
    """Add ``values`` under ``name`` to artifacts/e2e_latency.json (one file for the suite)."""
    data = json.loads(LATENCY_JSON.read_text()) if LATENCY_JSON.exists() else {}
    data[name] = values
    write_json(LATENCY_JSON, data)


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
