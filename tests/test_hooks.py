import pytest
import torch

import helpers
from helpers import LayerError, check_channel, get_layer, leftover_hooks, record


def test_record_matches_a_manual_forward(model, cat):
    x = cat[None]
    with record(model, ["blocks.5", "act1"]) as rec:
        model(x)
    h = 2 * x - 1
    h = model.act0(model.bn0(model.conv_stem(h)))
    for i in range(6):
        h = model.blocks[i](h)
    assert torch.allclose(rec["blocks.5"], h, atol=1e-5)
    assert rec["act1"].shape == (1, 1280, 7, 7)
    assert leftover_hooks(model) == []


def test_record_gradients_equal_autograd(model, cat):
    x = cat[None].clone().requires_grad_(True)
    with record(model, "blocks.10", gradients=True) as rec:
        out = model(x)
        score = out[0, 281]
        grad_act, = torch.autograd.grad(score, rec["blocks.10"], retain_graph=True)
        score.backward()
    assert torch.allclose(rec.gradients["blocks.10"], grad_act)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_hooks_removed_after_exceptions(model, cat, error):
    with pytest.raises(error):
        with record(model, ["blocks.3", "conv_head"], gradients=True):
            model(cat[None])
            raise error()
    assert leftover_hooks(model) == []


def test_unknown_layer_suggests_close_names(model):
    with pytest.raises(LayerError, match="Did you mean blocks.5"):
        get_layer(model, "block.5")
    with pytest.raises(LayerError):
        with record(model, ["blocks.2", "nope"]):
            pass
    assert leftover_hooks(model) == []  # validated before any hook went on


def test_channel_out_of_range_names_the_valid_range(model):
    assert check_channel(model, "blocks.5", 79) == 79
    with pytest.raises(ValueError, match=r"valid are 0\.\.79"):
        check_channel(model, "blocks.5", 80)


def test_layers_lists_shapes_in_order(model):
    info = {l.name: l for l in helpers.layers(model, 224)}
    assert info["conv_stem"].shape == (32, 112, 112)
    assert info["blocks.15"].shape == (320, 7, 7)
    assert info["fc"].shape == (1000,)
    names = helpers.main_layers(model)
    assert names[0] == "act0" and names[-1] == "act1" and "blocks.15" in names


def test_main_layers_on_torchvision_architectures():
    vgg = helpers.load_model("vgg16", pretrained=False)
    names = helpers.main_layers(vgg, 64)
    assert names[0] == "features.0" and "features.30" in names
    res = helpers.load_model("resnet18", pretrained=False)
    assert {"layer1.0", "layer4.1", "relu"} <= set(helpers.main_layers(res, 64))
