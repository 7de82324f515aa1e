"""Run All time of every notebook with its default settings, against the 60 s limit.

Run: .venv/bin/python bench/bench_notebooks.py [--student] [01 02 ...]   (default: all twelve)

Each notebook runs top to bottom in a fresh kernel (nbclient), as a student's Run All
does, and the wall time from the first cell to the last is printed beside the limit:
60 s each, and for the notebooks that compute features of a whole data set (02, 04)
also a cold run, with the feature cache (data/cache) emptied first: limit 120 s.
The kernel start (about 1 s) is not counted. ``--student`` also times the student release
(``make student``: no exercise done) of each notebook, in a column beside the instructor version.
"""
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CACHED = {"02", "04"}  # notebooks whose features are cached on disk
LIMIT, COLD_LIMIT = 60.0, 120.0


def run_all(path):
    """Seconds to execute every cell of ``path`` in a new kernel (started in notebooks/)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        start = time.perf_counter()
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
        return time.perf_counter() - start


def cold_then_warm(path, cache_dir):
    """A run with an empty feature cache, then one with the cache that run made.

    The user's own cache is moved aside meanwhile and put back afterwards.
    """
    aside = Path(tempfile.mkdtemp()) / "cache"
    had_cache = cache_dir.exists()
    if had_cache:
        shutil.move(str(cache_dir), aside)
    try:
        return [("cold", run_all(path), COLD_LIMIT), ("warm", run_all(path), LIMIT)]
    finally:
        if had_cache:
            shutil.rmtree(cache_dir, ignore_errors=True)
            shutil.move(str(aside), cache_dir)


def student_release():
    """The folder of a fresh student release (scripts/student_release.py)."""
    import importlib.util
    script = NOTEBOOKS.parent / "scripts" / "student_release.py"
    spec = importlib.util.spec_from_file_location("student_release", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = Path(tempfile.mkdtemp()) / "notebooks"
    module.write_release(out)
    return out


def main(prefixes, student=False):
    from helpers.cache import cache_folder
    paths = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                   if not prefixes or p.name[:2] in prefixes)
    release = student_release() if student else None
    print(f"{'notebook':28s} {'run (s)':>8s} {'limit':>6s}  ok"
          + (f" {'student (s)':>12s}  ok" if student else ""))
    for path in paths:
        if path.name[:2] in CACHED:
            runs = cold_then_warm(path, cache_folder())
        else:
            runs = [("", run_all(path), LIMIT)]
        for kind, seconds, limit in runs:
            name = f"{path.stem} {kind}".strip()
            line = f"{name:28s} {seconds:8.1f} {limit:6.0f}  {'yes' if seconds < limit else 'NO '}"
            if release is not None and kind != "cold":
                theirs = run_all(release / path.name)
                line += f" {theirs:12.1f}  {'yes' if theirs < LIMIT else 'NO'}"
            print(line, flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main({a for a in args if a != "--student"}, student="--student" in args)
