"""Grad-CAM and Guided Grad-CAM: against pytorch-grad-cam, against CAM, and by hand."""
import numpy as np
import pytest
import torch
from model_state import assert_unchanged, state
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from helpers import LayerError, load_image
from helpers.hooks import activations
from helpers.attribution import guided_backprop
from helpers.gradcam import cam_layer, cam_layers, grad_cam, guided_grad_cam

SIZE = 128  # the last blocks of every model here see a 4 x 4 grid


@pytest.fixture(scope="module")
def cat():
    return load_image("chelsea", SIZE)


def rel_err(ours, ref):
    """Largest difference relative to the reference map's maximum."""
    return float((ours - ref).abs().max() / ref.abs().max())


def _reference(model, x, layer, target):
    """pytorch-grad-cam's GradCAM: (its raw map on the layer's grid, its final map).

    Its raw map is ``get_cam_image`` of the activation and gradient it captured, with the ReLU
    it applies next; its final map is min-max scaled, resized with ``cv2.resize`` to the
    photo, then min-max scaled again (``scale_cam_image`` twice).
    """
    module = dict(model.named_modules())[layer]
    targets = [ClassifierOutputTarget(target)]
    # Our models' parameters are frozen: the input carries the graph, as in ours.
    xx = x[None].clone().requires_grad_(True)
    with GradCAM(model=model, target_layers=[module]) as cam:
        final = cam(input_tensor=xx, targets=targets)[0]
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        raw = np.maximum(cam.get_cam_image(xx, module, targets, acts, grads)[0], 0)
    return torch.from_numpy(raw), torch.from_numpy(final)


def _min_max(m):
    """Scaled to [0, 1] (pytorch-grad-cam adds 1e-7 to the divisor: not here, where a random
    network's map can be 1e-3 small; its two scalings cancel that term to ~1e-7)."""
    m = m - m.min()
    return m / m.max()


CASES = [("offline", None), ("offline", "blocks.10"), ("offline", "blocks.4"),
         ("resnet18", None), ("resnet18", "layer3.1"), ("vgg16", None), ("vgg16", "features.23"),
         ("vgg16", "features.28"), ("densenet121", None), ("densenet121", "features.denseblock3")]
# vgg16 features.28 and densenet121 features.norm5 (its default) are changed in place by the
# ReLU that follows: the gradient of the value before the change, as pytorch-grad-cam takes it.


@pytest.mark.parametrize("name, layer", CASES)
def test_grad_cam_matches_pytorch_grad_cam(name, layer, model, untrained, cat):
    """The raw map (on the layer's grid) and the returned map (its scaling applied to ours).

    The offline model explains the cat's class; a random network its own top class (for many
    other classes a random network's map is zero everywhere after the ReLU).
    """
    net = model if name == "offline" else untrained(name)
    before = state(net)
    target = 285 if name == "offline" else int(net(cat[None]).argmax())
    layer = cam_layer(net, layer, SIZE)
    raw, final = _reference(net, cat, layer, target)
    assert raw.max() > 0 and final.shape == (SIZE, SIZE)
    ours = grad_cam(net, cat, None if name != "offline" else target, layer, upsample=False)
    assert ours.shape == raw.shape
    assert rel_err(ours, raw) < 1e-5
    # Resizing is linear and keeps constants, so min-max(resize(min-max(raw))) is min-max of
    # our bilinear upsampling (cv2's INTER_LINEAR is PyTorch's align_corners=False). Min-max
    # scaling divides by the map's range, which magnifies the rounding of the raw maps by
    # max / (max - min): the difference is compared in the raw map's units.
    up = grad_cam(net, cat, target, layer)
    assert up.shape == (SIZE, SIZE) and up.device.type == "cpu" and up.dtype == torch.float32
    assert rel_err(_min_max(up), final) * float((up.max() - up.min()) / up.max()) < 1e-5
    assert_unchanged(net, before)


def test_default_layer_is_the_last_convolutional_block(model, untrained):
    assert cam_layer(model) == "act1" == cam_layers(model)[-1]
    assert cam_layer(untrained("resnet18")) == "layer4.1"
    assert cam_layer(untrained("vgg16")) == "features.30"
    assert cam_layer(untrained("mobilenet_v2")) == "features.18"


@pytest.mark.parametrize("name, layer, head", [("offline", "act1", "fc"),
                                               ("resnet18", "layer4.1", "fc")])
def test_grad_cam_is_cam_before_global_average_pooling(name, layer, head, model, untrained, cat):
    """Selvaraju et al., section 3.1: before global average pooling and one linear layer,
    alpha_k = w_k / (h w), so Grad-CAM is the CAM of Zhou et al. (2016) divided by h w."""
    net = model if name == "offline" else untrained(name)
    acts = activations(net, cat, [layer])[layer][0]
    w = dict(net.named_modules())[head].weight[281]
    cam = (w[:, None, None] * acts).sum(0).clamp_min(0) / acts[0].numel()
    assert rel_err(grad_cam(net, cat, 281, layer, upsample=False), cam) < 1e-5


def test_grad_cam_on_a_hand_made_network():
    """Score = 2 * mean(A_0) - mean(A_1) of a 2-channel map: alpha = (2, -1) / 16."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1, bias=False)
            self.conv.weight.data = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])[..., None, None]
            self.requires_grad_(False)

        def forward(self, x):
            a = self.conv(x).mean((2, 3))
            return torch.stack([2 * a[:, 0] - a[:, 1], a[:, 1]], 1)

    x = torch.rand(3, 4, 4)
    expected = ((2 * x[0] - x[1]) / 16).clamp_min(0)
    assert torch.allclose(grad_cam(Net(), x, 0, "conv", upsample=False), expected, atol=1e-7)
    assert cam_layer(Net(), None, 4) == "conv"


def test_grad_cam_is_class_discriminative(model):
    """On the astronaut photo the football helmet and the space shuttle are in different places."""
    x = load_image("astronaut", 224)
    helmet = grad_cam(model, x, "football helmet", upsample=False)
    shuttle = grad_cam(model, x, "space shuttle", upsample=False)
    h, w = helmet.shape
    assert helmet[h // 2:, w // 2:].sum() > 0.5 * helmet.sum()   # helmet: bottom right
    assert shuttle[: h // 2, w // 2:].sum() > 0.5 * shuttle.sum()  # shuttle: top right


def test_non_square_photo_and_predicted_class(model):
    x = load_image("coffee", 224)[:, :160, :]
    cam = grad_cam(model, x)
    top = int(model(x[None]).argmax())
    assert cam.shape == (160, 224) and torch.equal(cam, grad_cam(model, x, top))


def test_guided_grad_cam_is_guided_backprop_times_scaled_cam(model, cat):
    before = state(model)
    both = guided_grad_cam(model, cat, 285, "blocks.10")
    cam = grad_cam(model, cat, 285, "blocks.10")
    guided = guided_backprop(model, cat, 285)
    assert both.shape == (3, SIZE, SIZE) and both.device.type == "cpu"
    assert torch.allclose(both, guided * cam / cam.max(), atol=1e-7)
    assert (both[:, cam == 0] == 0).all() and (cam == 0).any()
    assert rel_err(both, guided) > 0.05  # Grad-CAM changed it
    assert_unchanged(model, before)


# ----------------------------------------------------------------------------- bad input
def test_unknown_layer_names_the_valid_choices(model, cat):
    with pytest.raises(LayerError, match=r"Unknown layer 'blocks\.99'.*blocks\.15, act1"):
        grad_cam(model, cat, 285, "blocks.99")
    assert_unchanged(model, state(model))


@pytest.mark.parametrize("layer", ["fc", "flatten"])
def test_layer_without_a_spatial_map_is_refused(model, cat, layer):
    with pytest.raises(ValueError, match=rf"Layer '{layer}' gives .* not a \(C, h, w\) map.*act1"):
        grad_cam(model, cat, 285, layer)


@pytest.mark.parametrize("target, message", [(1000, r"out of range: valid are 0\.\.999"),
                                             ("zebrafish", "matches 0 classes"),
                                             (2.5, "index or a name")])
def test_bad_class_is_refused(model, cat, target, message):
    with pytest.raises(ValueError, match=message):
        grad_cam(model, cat, target)
    with pytest.raises(ValueError, match=message):
        guided_grad_cam(model, cat, target)


def test_two_images_are_refused(model, cat):
    with pytest.raises(ValueError, match="one image"):
        grad_cam(model, torch.stack([cat, cat]))


# ----------------------------------------------------------------------------- hooks
class _Boom(nn.Module):
    """Fails in Grad-CAM's own pass (the input carries a graph), not in the layer survey."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def forward(self, x):
        if x.requires_grad:
            raise self.error()
        return x.mean((2, 3))


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_no_hooks_left_after_an_error_in_the_forward_pass(error):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), _Boom(error)).requires_grad_(False)
    before = state(net)
    with pytest.raises(error):
        grad_cam(net, torch.rand(3, 16, 16), 0, "0")
    assert_unchanged(net, before)
