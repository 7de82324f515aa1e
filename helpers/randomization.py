"""The model-randomization sanity check for attribution maps (Adebayo et al., NeurIPS 2018).

"Sanity Checks for Saliency Maps": re-initialise a trained network's layers from
the top down and compare each attribution map with the original one by Spearman
rank correlation. A method whose maps barely change while the network becomes
random is explaining the image (an edge detector), not the model.
"""
import copy
import math

import torch

from .attribution import deconvnet, guided_backprop, saliency
from .hooks import get_layer, layers
from .models import class_index, model_input

METHODS = {
    "saliency": lambda m, x, t: saliency(m, x, t),
    "guided_backprop": lambda m, x, t: guided_backprop(m, x, t).abs().amax(0),
    "deconvnet": lambda m, x, t: deconvnet(m, x, t).abs().amax(0),
    "smoothgrad": lambda m, x, t: saliency(m, x, t, noise=0.15, samples=8),
}
_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def randomization_layers(model, size=224):
    """The units ``cascading_randomization`` re-initialises, from the top (output) down.

    Top-level children and the children of top-level ``nn.Sequential`` containers
    that hold parameters, in reverse forward order; a normalization layer is
    randomised together with the unit just before it (``conv_head`` includes ``bn1``).
    """
    return [names[0] for names in _units(model, size)]


def _units(model, size):
    candidates = {}
    for name, module in model.named_children():
        kids = list(module.named_children()) if isinstance(module, torch.nn.Sequential) else []
        for child, sub in kids or [("", module)]:
            full = f"{name}.{child}" if child else name
            if any(True for _ in sub.parameters()):
                candidates[full] = sub
    order = [info.name for info in layers(model, size) if info.name in candidates]
    units = []
    for name in order:
        if isinstance(candidates[name], _NORMS) and units:
            units[-1].append(name)
        else:
            units.append([name])
    return units[::-1]


@torch.no_grad()
def _reinit(module, generator):
    """Fresh random weights: He-normal for weights, zero biases, identity normalization."""
    for m in module.modules():
        if isinstance(m, _NORMS):
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
            continue
        for name, p in m.named_parameters(recurse=False):
            if p.dim() > 1:
                fan_in = p[0].numel()
                noise = torch.randn(p.shape, generator=generator) * math.sqrt(2.0 / fan_in)
                p.copy_(noise.to(p.device, p.dtype))
            else:
                p.zero_()


def rank_correlation(a, b):
    """Spearman rank correlation of two maps of the same shape (ties get mean ranks).

    A constant map has no ranking: its correlation with anything is 0.
    """
    from scipy.stats import spearmanr
    a, b = (t.detach().flatten().float().cpu() for t in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"Maps of different sizes: {a.numel()} and {b.numel()} values.")
    if bool(a.min() == a.max()) or bool(b.min() == b.max()):
        return 0.0
    return float(spearmanr(a.numpy(), b.numpy()).statistic)


def cascading_randomization(model, image, target=None, methods=("saliency", "guided_backprop"),
                            stops=None, seed=0):
    """Adebayo et al. (2018): re-initialise the layers from the top down; do the maps change?

    Works on a deep copy: ``model`` itself is not modified. The target class is
    fixed to the original prediction (or ``target``) for every step.

    Args:
        image: (3, H, W) in [0, 1].
        methods: names from ``METHODS`` (saliency, guided_backprop, deconvnet, smoothgrad).
        stops: unit names (see ``randomization_layers``) after whose randomisation the maps
            are recorded; None = every unit.
    Returns:
        dict with ``steps`` (``["original", unit, ...]``), ``maps[method]`` (list of (H, W)
        maps, one per step) and ``similarity[method]`` (Spearman rank correlation with
        the original map, one per step).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}: choose from {', '.join(METHODS)}.")
    x = model_input(model, image)
    units = _units(model, int(x.shape[-1]))
    names = [u[0] for u in units]
    stops = names if stops is None else list(stops)
    bad = [s for s in stops if s not in names]
    if bad:
        raise ValueError(f"Unknown unit(s) {bad}: choose from {', '.join(names)} (top first).")
    t = None if target is None else class_index(model, target)
    if t is None:
        with torch.inference_mode():
            t = int(model(x).argmax(-1)[0])
    work = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    result = {"steps": ["original"], "maps": {m: [] for m in methods},
              "similarity": {m: [] for m in methods}, "target": t}

    def snapshot():
        for m in methods:
            result["maps"][m].append(METHODS[m](work, x, t).detach())

    snapshot()
    for unit in units:
        if not (set(stops) & set(names[names.index(unit[0]):])):
            break  # nothing left to record
        for name in unit:
            _reinit(get_layer(work, name), generator)
        if unit[0] in stops:
            result["steps"].append(unit[0])
            snapshot()
    for m in methods:
        first = result["maps"][m][0]
        result["similarity"][m] = [rank_correlation(first, other) for other in result["maps"][m]]
    return result


__all__ = ["METHODS", "cascading_randomization", "randomization_layers", "rank_correlation"]
