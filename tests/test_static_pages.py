"""The static pages artifacts/html/NN_x.html (``notebook_checks.write_html``) are right offline.

Equations become MathML (no MathJax from the web), and two panels shown by one cell appear
as two pictures: each its own first drawing. The page is opened in headless Chromium with
every request refused when a ``chromium`` is on PATH.
"""
import concurrent.futures
import hashlib
import re
import shutil

import matplotlib.pyplot as plt
import nbformat
import notebook_checks
import pytest
from panel_probe import first_drawings

from helpers import widgets

MARKDOWN = ("# Title\n\nThe score $S_c(x)$ and a price of 5 dollars, `echo $HOME`, then\n\n"
            "$$\n\\mathcal{L}(x) = \\alpha\\,\\underbrace{\\lVert \\phi(x) - \\phi(c)\\rVert^2}_{d}"
            " + \\operatorname{clip}_{[0,1]}\\big(x\\big)\n$$\n\nand a sum $\\sum_{i=1}^n i$.")


class _Item:
    """What ``write_html`` reads of nbval's cell items."""

    def __init__(self, cell_num, outputs):
        self.cell_num, self.test_outputs = cell_num, outputs


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    ip = InteractiveShell.instance()
    select_figure_formats(ip, {"png"})
    yield ip
    InteractiveShell.clear_instance()


def _square(colour):
    def draw(k):
        fig, ax = plt.subplots(figsize=(1.5, 1.5))
        ax.add_patch(plt.Rectangle((0, 0), 1, 1, color=colour))
        ax.set_title(f"{colour} {k}")
        plt.close(fig)
        return fig
    draw.__name__ = colour
    return draw


def _page(shell, tmp_path, monkeypatch):
    """A two-cell notebook: markdown with math, and one cell that shows two panels."""
    monkeypatch.setattr(notebook_checks, "HTML", tmp_path)
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        first = widgets.panel(_square("red"), k=widgets.int_slider(1, 0, 3))
        second = widgets.panel(_square("blue"), k=widgets.int_slider(2, 0, 3))
    outputs = [{"output_type": "display_data", "metadata": {}, "data": o.data} for o in cap.outputs]
    assert len(outputs) == 2 and all("application/vnd.jupyter.widget-view+json" in o["data"]
                                     for o in outputs)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(MARKDOWN),
                                         nbformat.v4.new_code_cell("panels()")])
    path = tmp_path / "99_demo.ipynb"
    drawings = first_drawings([first, second])
    notebook_checks.write_html(path, nb, [_Item(0, outputs)], drawings)
    return (tmp_path / "99_demo.html").read_text(encoding="utf-8")


def _images(html):
    return [hashlib.md5(src.encode()).hexdigest()
            for src in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_two_panels_in_one_cell_each_show_their_own_first_drawing(shell, tmp_path, monkeypatch):
    html = _page(shell, tmp_path, monkeypatch)
    images = _images(html)
    assert len(images) == 2 and images[0] != images[1]


def test_equations_are_mathml_and_the_page_loads_nothing_from_the_web(shell, tmp_path,
                                                                        monkeypatch):
    import importlib.util
    assert importlib.util.find_spec("latex2mathml"), "install the dev set: latex2mathml is missing"
    html = _page(shell, tmp_path, monkeypatch)
    assert html.count("<math") == 3 and 'display="block"' in html
    assert "$$" not in html and "$S_c" not in html and "MATHMLPLACEHOLDER" not in html
    assert "echo $HOME" in html  # dollars in code stay
    assert not re.search(r'<script src="https?://', html)
    assert "<munder>" in html  # \underbrace, not dropped


def test_static_page_draws_its_equations_offline_in_chromium(shell, tmp_path, monkeypatch):
    if shutil.which("chromium") is None:
        pytest.skip("no chromium on PATH")
    sync_api = pytest.importorskip("playwright.sync_api")
    _page(shell, tmp_path, monkeypatch)
    url = (tmp_path / "99_demo.html").as_uri()
    found = {}

    def look():  # Playwright's sync API refuses a thread with a running asyncio loop (nbval's)
        refused = []
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.continue_() if route.request.url == url
                           else (refused.append(route.request.url), route.abort()))
                page.goto(url)
                found["text"] = page.inner_text("body")
                found["sizes"] = page.eval_on_selector_all(
                    "math", "ms => ms.map(m => { const r = m.getBoundingClientRect();"
                    " return [r.width, r.height, m.getAttribute('display')]; })")
                found["panels"] = page.eval_on_selector_all(
                    ".jp-OutputArea-output img", "imgs => imgs.map(i => i.naturalWidth)")
            finally:
                browser.close()
        found["refused"] = refused

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(look).result(timeout=120)
    text, sizes, panels, refused = (found[k] for k in ("text", "sizes", "panels", "refused"))
    assert "$$" not in text and "\\mathcal" not in text and "\\operatorname" not in text
    assert len(sizes) == 3 and all(w > 5 and h > 5 for w, h, _ in sizes), sizes
    block = [s for s in sizes if s[2] == "block"]
    assert len(block) == 1 and block[0][1] > max(s[1] for s in sizes if s[2] != "block")
    assert len(panels) == 2 and all(w > 0 for w in panels)
    assert [u for u in refused if not u.startswith("data:")] == []  # nothing from the web
