"""Grad-CAM and Guided Grad-CAM: which regions of a layer's feature maps speak for a class.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017) weighs each channel ``k`` of a convolutional
layer's output ``A`` by the spatial mean of the class score's gradient,

    alpha_k = mean_ij dS_y / dA_kij,      L = ReLU(sum_k alpha_k A_k),

and upsamples the coarse map ``L`` to the photo. Guided Grad-CAM multiplies it with guided
backpropagation (``attribution.guided_backprop``): the region from Grad-CAM, the fine detail
from guided backprop.

Works on any ``nn.Module`` and any layer with a (C, h, w) output, named as in
``named_modules()``; the default is the last convolutional block (``cam_layers(model)[-1]``).
The layer is read through ``hooks.record`` (hooks removed on exit, also on errors).
"""
import torch
import torch.nn.functional as F

from .attribution import guided_backprop, one_image, pick_class, target_class
from .hooks import LayerError, layers, main_layers, record


def _hw(x_or_size):
    if isinstance(x_or_size, torch.Tensor):
        return tuple(x_or_size.shape[-2:])
    return (int(x_or_size), int(x_or_size)) if isinstance(x_or_size, int) else tuple(x_or_size)


def cam_layers(model, size=224):
    """The layers a Grad-CAM layer picker offers: the model's blocks with (C, h, w) outputs.

    The same short list as ``hooks.main_layers`` (``blocks.0 ... blocks.15, act1`` for the
    offline model, ``layer1.0 ... layer4.1`` for ResNet-18), in forward order; the last one
    is Grad-CAM's default layer. Any other ``named_modules()`` name with a (C, h, w) output
    works too.
    """
    names = main_layers(model, size)
    if not names:  # a model without Sequential containers: every spatial layer
        names = [i.name for i in layers(model, size) if len(i.shape) == 3]
    return names


def cam_layer(model, layer=None, size=224):
    """``layer`` checked (it exists and has a (C, h, w) output), or the default: the last block.

    Raises:
        LayerError: an unknown name; ValueError: a layer without a spatial output. Both
            name the valid choices.
    """
    choices = cam_layers(model, size)
    if layer is None:
        if not choices:
            raise ValueError(f"{type(model).__name__} has no layer with a (C, h, w) output: "
                             f"Grad-CAM needs a convolutional layer.")
        return choices[-1]
    info = {i.name: i for i in layers(model, size)}
    if layer not in dict(model.named_modules()) or layer == "":
        raise LayerError(f"Unknown layer {layer!r} in {type(model).__name__}. Choose one of "
                         f"{', '.join(choices)} (or any named_modules() name with a (C, h, w) "
                         f"output).")
    if layer not in info or len(info[layer].shape) != 3:
        shape = info[layer].shape if layer in info else "no tensor"
        raise ValueError(f"Layer {layer!r} gives {shape} for one image, not a (C, h, w) map: "
                         f"Grad-CAM needs a convolutional layer. Choose one of "
                         f"{', '.join(choices)}.")
    return layer


def grad_cam(model, image, target=None, layer=None, upsample=True):
    """Grad-CAM (Selvaraju et al. 2017) of one class at one convolutional layer.

    One forward pass that records ``layer`` (``hooks.record``), then
    ``torch.autograd.grad`` of the class score (the logit) to that layer's output only:
    the backward pass stops at the layer and no weight gradients are computed.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the predicted class.
        layer: a ``named_modules()`` name with a (C, h, w) output (see ``cam_layers``);
            None = the last convolutional block.
        upsample: resize the (h, w) map bilinearly to the photo's (H, W) (as
            pytorch-grad-cam does with ``cv2.resize``); False keeps the layer's grid.
    Returns:
        (H, W) (or (h, w)) tensor >= 0 on the CPU, in units of the score. A layer whose
        output a later in-place operation changes is seen after the change.
    """
    x = one_image(model, image)
    layer = cam_layer(model, layer, _hw(x))
    t = target_class(model, target)
    # The input asks for a graph so the layer's output has one (parameters stay frozen).
    x = x.clone().requires_grad_(True)
    with record(model, [layer], gradients=True) as rec:
        out = model(x)
    try:
        t = pick_class(model, out, t)
        if layer not in rec.activations:
            raise LayerError(f"Layer {layer!r} produced no tensor output in a forward pass.")
        act, score = rec[layer], out[0, t]
        # Backward to the layer only: its tensor hook (``record(gradients=True)``) sees the
        # gradient.
        torch.autograd.grad(score, act, retain_graph=True)
        if layer not in rec.gradients:
            # A later in-place operation changed the output (DenseNet's ``relu_`` after
            # ``features.norm5``): the hook sits on the value before the change, which only a
            # pass on to the input reaches. The activation is read after the change, as
            # pytorch-grad-cam reads it.
            torch.autograd.grad(score, x)
        grad = rec.gradients[layer]
        with torch.no_grad():
            weights = grad.mean((2, 3), keepdim=True)  # alpha_k: global-average-pooled gradient
            cam = (weights * act).sum(1, keepdim=True).clamp_min(0)
            if upsample:
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    finally:
        # Drop the graph now rather than when the recording goes: a panel calls this often.
        rec.activations.clear()
        rec.gradients.clear()
    return cam[0, 0].float().cpu()


def guided_grad_cam(model, image, target=None, layer=None):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the upsampled Grad-CAM.

    The Grad-CAM map is divided by its maximum first, so the result keeps guided backprop's
    units and is zero wherever Grad-CAM is zero.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the predicted class.
        layer: Grad-CAM's layer (see ``grad_cam``).
    Returns:
        (3, H, W) signed tensor on the CPU (show it with ``attribution.gradient_image``).
    """
    cam = grad_cam(model, image, target, layer)
    guided = guided_backprop(model, image, target).float().cpu()
    return guided * (cam / cam.max().clamp_min(1e-12))


__all__ = ["cam_layer", "cam_layers", "grad_cam", "guided_grad_cam"]
