"""Feature maps of one layer for one photo (Yosinski et al. 2015, "deepvis" style)."""
from . import hooks


def feature_maps(model, image, layer):
    """The activation of ``layer`` for one image: (C, H, W) tensor on the CPU.

    Args:
        image: (3, H, W) in [0, 1].
    """
    maps = hooks.activations(model, image, [layer])[layer][0].float().cpu()
    if maps.dim() != 3:
        raise ValueError(f"Layer {layer!r} has output shape {tuple(maps.shape)}, not (C, H, W): "
                         "pick a convolutional layer (see helpers.main_layers(model)).")
    return maps


def strongest_channels(maps, k=8):
    """Indices of the ``k`` channels with the largest mean activation, strongest first."""
    return maps.mean((1, 2)).topk(min(k, len(maps))).indices.tolist()


def channel_map(model, image, layer, channel):
    """One channel's (H, W) map, validated: out-of-range channels name the valid range."""
    maps = feature_maps(model, image, layer)
    hooks.check_channel(model, layer, channel, size=image.shape[-1])
    return maps[channel]
