"""Shared fixtures: the offline model (loaded once), sample photos, the shared ImageNet folder."""
import os
import tempfile
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]
IMAGENET_SAMPLES = REPO.parent / "shared" / "imagenet-samples"

# Keep Jupyter's and matplotlib's files out of $HOME when notebooks run in tests.
for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
    os.environ.setdefault(var, tempfile.mkdtemp(prefix=var.lower() + "-"))


@pytest.fixture(scope="session")
def model():
    from helpers import load_model
    return load_model()


@pytest.fixture(scope="session")
def cat():
    from helpers import load_image
    return load_image("chelsea", 224)


@pytest.fixture(scope="session")
def imagenet_samples():
    files = sorted(IMAGENET_SAMPLES.glob("*.jpg")) if IMAGENET_SAMPLES.is_dir() else []
    if not files:
        pytest.skip(f"{IMAGENET_SAMPLES} is absent (it lives beside the repository, not in it)")
    return files


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
