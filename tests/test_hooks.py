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


def test_main_layers_on_torchvision_architectures(untrained):
    vgg = untrained("vgg16")
    names = helpers.main_layers(vgg, 64)
    assert names[0] == "features.0" and "features.30" in names
    res = untrained("resnet18")
    assert {"layer1.0", "layer4.1", "relu"} <= set(helpers.main_layers(res, 64))


def _chain():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 5, 3),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(5, 2))


def test_record_stop_ends_the_forward_after_the_last_named_layer():
    net, x = _chain(), torch.rand(2, 3, 12, 12)
    later = []
    net[3].register_forward_hook(lambda m, i, o: later.append("3"))  # after the recorded layers
    with record(net, ["0", "2"], stop=True) as rec:
        assert rec.run(x) is None  # stopped: no model output
        assert later == [] and set(rec.activations) == {"0", "2"}
        assert torch.allclose(rec["2"], net[2](net[1](net[0](x))))
        net(x)  # a bare call as the block's last statement: the stop ends the block quietly
    assert later == []
    net[3]._forward_hooks.clear()
    assert leftover_hooks(net) == []
    with record(net, ["2"]) as rec:  # without stop the whole model runs
        assert rec.run(x).shape == (2, 2)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_record_stop_leaves_no_hooks_after_exceptions(error):
    net = _chain()

    def boom(m, i, o):
        raise error("forced failure")
    handle = net[0].register_forward_hook(boom)
    with pytest.raises(error, match="forced failure"):
        with record(net, ["2"], stop=True, gradients=True) as rec:
            rec.run(torch.rand(1, 3, 12, 12))
    handle.remove()
    assert leftover_hooks(net) == []


def test_nested_stops_end_only_their_own_pass():
    net, x = _chain(), torch.rand(1, 3, 12, 12)
    with record(net, ["4"], stop=True) as outer:
        with record(net, ["0"], stop=True) as inner:
            inner.run(x)
        assert "4" not in outer.activations  # the inner stop came first
        outer.run(x)
        assert outer["4"].shape == (1, 5, 1, 1)
    assert leftover_hooks(net) == []


def test_activations_one_image_or_a_batch(model, cat):
    acts = helpers.hooks.activations(model, cat, ["blocks.2", "act1"])
    with torch.no_grad(), record(model, ["blocks.2", "act1"]) as rec:
        model(cat[None])
    assert list(acts) == ["blocks.2", "act1"]
    assert all(torch.allclose(acts[n], rec[n]) and not acts[n].requires_grad for n in acts)
    pair = torch.stack([cat, cat.flip(-1)])
    both = helpers.hooks.activations(model, pair, ["blocks.2", "output"])
    assert both["blocks.2"].shape[0] == 2 and both["output"].shape == (2, 1000)
    assert torch.allclose(both["blocks.2"][:1], acts["blocks.2"], atol=1e-5)
    with pytest.raises(LayerError, match="blocks.2"):
        helpers.hooks.activations(model, cat, ["block.2"])
    assert leftover_hooks(model) == []


def test_layers_say_which_outputs_are_rectified():
    info = {i.name: i for i in helpers.layers(_chain(), 12)}
    assert [n for n, i in info.items() if i.rectified] == ["1", "3"]
    assert info["2"].type == "Conv2d" and info["2"].shape == (5, 8, 8) and not info["2"].rectified
