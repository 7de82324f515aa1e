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
def untrained():
    """``untrained(name)``: a network with random weights (seed 0), built once per session.

    Tests only read these (layer surveys, receptive fields, attributions on random weights);
    VGG16 alone takes seconds to initialize.
    """
    from helpers import load_model

    built = {}

    def get(name):
        if name not in built:
            with torch.random.fork_rng(devices=[]):  # building leaves the tests' RNG alone
                torch.manual_seed(0)
                built[name] = load_model(name, pretrained=False)
        return built[name]
    return get


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


@pytest.fixture(scope="session")
def imagenet_photos(imagenet_samples):
    """The shared photos decoded once: (images (N, 3, 224, 224) in [0, 1], labels (N,), names)."""
    from helpers import imagenet_samples as load

    return load(imagenet_samples[0].parent)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def offline(model):
    """The offline model, under the name the attribution and patch tests use."""
    return model


@pytest.fixture(scope="session")
def resnet(untrained):
    return untrained("resnet18")


@pytest.fixture(scope="session")
def small_set():
    """Two crops per sample photo at 64 px: a tiny data set for patch tests."""
    from helpers import data
    return data.photos(n_per_class=2, size=64)
