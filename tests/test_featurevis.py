"""Activation maximization with the notebook's defaults: the class image is classified as the
class, the neuron's activation rises tenfold, the ablation switches map to arguments."""
import matplotlib.figure
import pytest
import torch

from helpers import leftover_hooks, pixel_image, predict
from helpers.featurevis import (DEFAULTS, REGULARIZERS, ablation_settings, activation,
                                is_class_layer, multifaceted_starts, regularization,
                                target_objective, visualization_figure, visualize)
from helpers import regularizers as reg


@pytest.mark.parametrize("target", ["flamingo", "golden retriever", "fire engine"])
def test_class_visualization_is_classified_as_the_class(model, target):
    result = visualize(model, target)  # defaults: 128 px, 64 steps, Yosinski regularizers
    (_, name, p), = predict(model, result.image, k=1)[0][:1]
    assert name == target and p >= 0.9, (name, p)
    assert result.steps == DEFAULTS["steps"]
    assert leftover_hooks(model) == []


def test_a_class_image_that_drifts_to_another_class_starts_again(model, monkeypatch):
    """A class image the model does not call that class (p < 0.9) restarts from new noise."""
    import helpers.featurevis as fv
    from helpers.optimize import Result
    seeds, probabilities = [], iter([0.2, 0.95])

    def fake_optimize(*args, seed, **kwargs):
        seeds.append(seed)
        return Result(image=torch.zeros(1, 3, 8, 8))
    monkeypatch.setattr(fv, "optimize", fake_optimize)
    monkeypatch.setattr(fv, "_class_probability", lambda *args: next(probabilities))
    assert visualize(model, "flamingo", seed=3).attempts == 2 and seeds == [3, 4]
    seeds.clear()
    assert visualize(model, 10, "blocks.8").attempts == 1 and seeds == [0]  # a neuron: no retry


@pytest.mark.parametrize("layer,channel", [("blocks.8", 10), ("blocks.12", 40)])
def test_neuron_activation_rises_tenfold(model, layer, channel):
    start = pixel_image(DEFAULTS["size"], sd=0.05, seed=0)()  # the start visualize uses
    before = activation(model, start, channel, layer)[0]
    result = visualize(model, channel, layer)
    after = activation(model, result.image, channel, layer)[0]
    assert after >= 10 * max(before, 0.1), (before, after)


def test_regularization_maps_settings_to_pieces():
    penalty, transforms, post = regularization(l2=5, decay=0.01, blur_sigma=1, blur_every=3,
                                               norm_pct=7, contrib_pct=9, jitter=2)
    assert penalty is not None and "5*l2" in penalty.name
    assert [type(t) for t in transforms] == [reg.Jitter] and transforms[0].pixels == 2
    assert [type(p) for p in post] == [reg.Decay, reg.BlurEvery, reg.ClipSmallNorm,
                                       reg.ClipSmallContribution]
    assert post[1].k == 3 and post[2].percentile == 7 and post[3].percentile == 9
    none = regularization(0, 0, 0, 4, 0, 0, 0)
    assert none == (None, [], [])


def test_ablation_switches():
    kw = ablation_settings({name: False for name in REGULARIZERS})
    assert all(v == 0 for v in kw.values()) and len(kw) == len(REGULARIZERS)
    kw = ablation_settings({"blur": True, "l2": True}, {"blur_sigma": 1.5})
    assert kw == {"blur_sigma": 1.5, "l2": 1000.0}
    with pytest.raises(ValueError, match="Unknown regularizer 'blurr'"):
        ablation_settings({"blurr": True})


def test_targets_and_class_layer(model):
    assert is_class_layer(model, "fc") and is_class_layer(model, "output")
    assert not is_class_layer(model, "blocks.3")
    rec = {"fc": torch.arange(1000.)[None], "output": torch.arange(1000.)[None]}
    assert target_objective(model, "tabby", "fc")(rec, None) == -281
    assert target_objective(model, 281)(rec, None) == -281
    with pytest.raises(ValueError, match="kind must be"):
        target_objective(model, 3, "blocks.3", kind="pixel")


def test_figure_and_starts(model):
    fig = visualization_figure(model, 3, "blocks.4", size=48, steps=4)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    starts = multifaceted_starts(32, photos=("chelsea", "rocket"))
    assert starts.shape == (2, 3, 32, 32) and (starts[0] - starts[1]).abs().mean() > 0.05
    assert leftover_hooks(model) == []
