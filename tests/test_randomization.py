"""helpers.randomization: the cascading randomization check and its rank correlation."""
import pytest
import torch
from model_state import assert_unchanged, state

from helpers import load_image
from helpers.attribution import guided_backprop, saliency
from helpers.randomization import cascading_randomization, randomization_layers, rank_correlation

SIZE = 64


@pytest.fixture(scope="module")
def cat():
    return load_image("chelsea", SIZE)


def test_cascading_randomization(resnet, cat):
    before = state(resnet)
    units = randomization_layers(resnet, SIZE)
    assert units[0] == "fc" and units[-1] == "conv1" and "bn1" not in units  # bn1 goes with conv1
    out = cascading_randomization(resnet, cat, 7, methods=("saliency", "guided_backprop"),
                                  stops=["fc", "layer4.0", "conv1"])
    assert out["steps"] == ["original", "fc", "layer4.0", "conv1"] and out["target"] == 7
    assert torch.equal(out["maps"]["saliency"][0], saliency(resnet, cat, 7))
    assert torch.equal(out["maps"]["guided_backprop"][0], guided_backprop(resnet, cat, 7).abs().amax(0))
    sims = out["similarity"]["saliency"]
    assert sims[0] == pytest.approx(1.0) and sims[-1] < 0.9  # a fully random net looks elsewhere
    assert_unchanged(resnet, before)  # it worked on a copy


def test_rank_correlation_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a = torch.rand(50)
    b = a + 0.5 * torch.rand(50)
    b[:10] = 0.3  # ties get mean ranks
    assert rank_correlation(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-9)
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    # By hand: ranks (1, 2, 3, 4) vs (1, 3, 2, 4), rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert rank_correlation(torch.tensor([1.0, 2, 3, 4]), torch.tensor([1.0, 3, 2, 4])) == \
        pytest.approx(0.8)
    assert rank_correlation(a, torch.zeros(50)) == 0.0  # a constant map has no ranking


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: cascading_randomization(m, x, methods=("lime",)), ValueError, r"saliency"),
    (lambda m, x: cascading_randomization(m, x, stops=["blocks.99"]), ValueError, r"fc, conv_head"),
])
def test_bad_input_names_valid_choices(offline, cat, call, error, message):
    before = state(offline)
    with pytest.raises(error, match=message):
        call(offline, cat)
    assert_unchanged(offline, before)
