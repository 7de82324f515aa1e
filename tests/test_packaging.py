"""The two ways to install stay in step, and the notebooks are committed clean."""
import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


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
