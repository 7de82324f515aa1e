"""Checks for notebook 11 (inversion and texture): TV_beta, the Gram matrix, the Gram loss.

References: ``objectives.total_variation`` (the prior of ``invert``), ``style.gram`` and
``style.layer_style_loss`` (the texture loss of ``synthesize_texture``), with their conventions:
TV is a mean over pixels, channels and images of ``(dx^2 + dy^2)^(beta/2)``; the Gram matrix is
divided by the number of positions; ``E_l`` divides by ``4 N_l^2`` and averages over the batch.
"""
import torch

from .. import style as _style
from ..hooks import activations
from ..images import load_image
from ..objectives import total_variation as _tv
from .verdict import Case, Mistake, close_number, course_model, noise, photos, random_images, run

__all__ = ["gram", "gram_loss", "total_variation"]


def _features(model, names, size, layer):
    """Activations of ``layer`` for the photos/textures ``names`` at ``size`` px (detached)."""
    return activations(model, photos(model, names, size), [layer])[layer]


def _style_layer(model, wanted):
    names = list(_style.preset(model)["style"])
    return wanted if wanted in names else names[min(2, len(names) - 1)]


# ---- total variation -------------------------------------------------------------------------

def _diffs(x):
    return x[..., :-1, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, :-1]


def _tv_no_exponent(image, beta=2.0):
    dx, dy = _diffs(image)
    return (dx.pow(2) + dy.pow(2)).mean()


def _tv_per_axis(image, beta=2.0):
    dx, dy = _diffs(image)
    return (dx.abs().pow(beta) + dy.abs().pow(beta)).mean()


def _tv_one_axis(image, beta=2.0):
    dx, _ = _diffs(image)
    return (dx.pow(2) + 1e-8).pow(beta / 2).mean()


def _tv_one_squared(image, beta=2.0):
    dx, dy = _diffs(image)
    return (dx.pow(2) + dy.abs() + 1e-8).pow(beta / 2).mean()


def _tv_sum(image, beta=2.0):
    return _tv(image, beta) * image[..., :-1, :-1].numel()


def _tv_colour(image, beta=2.0):
    dx, dy = _diffs(image)
    return (dx.pow(2).sum(-3) + dy.pow(2).sum(-3) + 1e-8).pow(beta / 2).mean()


def _tv_other_corner(image, beta=2.0):
    return _tv(image.flip(-1, -2), beta)


TV_MISTAKES = [
    Mistake(_tv_no_exponent, "raise dx^2 + dy^2 to the power beta / 2 (it is missing; "
            "beta = 2 alone cannot tell)."),
    Mistake(_tv_per_axis, "the exponent applies to the sum: (dx^2 + dy^2)^(beta/2), not "
            "|dx|^beta + |dy|^beta (they agree only for beta = 2)."),
    Mistake(_tv_one_axis, "use both differences, horizontal dx and vertical dy."),
    Mistake(_tv_one_squared, "square both differences: dx^2 + dy^2."),
    Mistake(_tv_sum, "take the mean over images, channels and pixel positions, not the sum."),
    Mistake(_tv_colour, "keep the colour channels apart: one (dx^2 + dy^2)^(beta/2) per "
            "channel, then the mean over all of them."),
    Mistake(_tv_other_corner, "take both differences at the same pixel (i, j) with i < H-1, "
            "j < W-1: dx = x[..., :-1, 1:] - x[..., :-1, :-1], dy = x[..., 1:, :-1] - "
            "x[..., :-1, :-1]."),
]


def total_variation(student, model=None):
    """Check ``my_total_variation(image, beta)`` -> ``objectives.total_variation``: the mean
    of ``(dx^2 + dy^2)^(beta/2)`` over (N, 3, H-1, W-1)."""
    photo = load_image("chelsea", 96)[None]
    return run("total variation", student, _tv, [
        Case("a random image at 16x16, beta 2", (random_images(1, 16, 16, seed=5), 2.0)),
        Case("a random batch of 2 at 37x53, beta 1", (random_images(2, 37, 53, seed=6), 1.0)),
        Case("the cat photo at 96 px, beta 1.5", (photo, 1.5)),
        Case("a batch of 2 photos at 61x80, beta 3",
             (torch.stack([load_image("coffee", 80), load_image("brick", 80)])[:, :, :61], 3.0)),
    ], compare=close_number, mistakes=TV_MISTAKES,
        hint="TV_beta = mean over (N, 3, H-1, W-1) of (dx^2 + dy^2)^(beta/2).")


# ---- Gram matrix -----------------------------------------------------------------------------

def _gram_unscaled(features):
    return _style.gram(features) * features[0, 0].numel()


def _gram_chw(features):
    return _style.gram(features) / features.shape[1]


def _gram_batch_mixed(features):
    n, c, h, w = features.shape
    f = features.transpose(0, 1).reshape(c, n * h * w)
    return f @ f.T / (h * w)


def _gram_batch_mixed_mean(features):
    n, c, h, w = features.shape
    f = features.transpose(0, 1).reshape(c, n * h * w)
    return f @ f.T / (n * h * w)


def _gram_reshape_mixed(features):
    n, c, h, w = features.shape
    f = features.reshape(c, n * h * w)
    return f @ f.T / (h * w)


def _gram_centred(features):
    return _style.gram(features - features.mean(dim=(2, 3), keepdim=True))


_PER_IMAGE = ("one Gram matrix per image: keep the batch dimension (F = features.reshape(N, C, "
              "H * W), torch.bmm(F, F.transpose(1, 2))); do not pool the images' positions.")
GRAM_MISTAKES = [
    Mistake(_gram_unscaled, "divide F F^T by the number of positions M = H * W, so that "
            "images of different sizes give comparable Gram matrices."),
    Mistake(_gram_chw, "divide by the number of positions H * W only, not by C * H * W."),
    Mistake(_gram_batch_mixed, _PER_IMAGE),
    Mistake(_gram_batch_mixed_mean, _PER_IMAGE),
    Mistake(_gram_reshape_mixed, _PER_IMAGE),
    Mistake(_gram_centred, "do not subtract the means: the Gram matrix holds uncentred second "
            "moments, not covariances."),
]


def gram(student, model=None):
    """Check ``my_gram(features)`` -> ``style.gram``: (N, C, C) = F F^T / (H W) per image."""
    model = course_model(model)
    layer = _style_layer(model, "blocks.3.act0")
    first = next(iter(_style.preset(model)["style"]))
    return run("gram", student, _style.gram, [
        Case("random features of 1 image, 4 channels at 5x7", (noise((1, 4, 5, 7), 7),)),
        Case("random features of a batch of 3, 6 channels at 9x11", (noise((3, 6, 9, 11), 8),)),
        Case(f"the cat photo's {first} features at 64 px",
             (_features(model, ["chelsea"], 64, first),)),
        Case(f"{layer} features of brick and grass at 72 px",
             (_features(model, ["brick", "grass"], 72, layer),)),
    ], mistakes=GRAM_MISTAKES,
        hint="reshape to F of shape (N, C, H*W); G = F @ F^T / (H*W), one (C, C) per image.")


# ---- the Gram loss of one layer --------------------------------------------------------------

def _loss_no_scale(features, target_gram):
    return _style.layer_style_loss(features, target_gram) * 4 * features.shape[1] ** 2


def _loss_mean(features, target_gram):
    return _style.layer_style_loss(features, target_gram) * 4


def _loss_batch_sum(features, target_gram):
    return _style.layer_style_loss(features, target_gram) * len(features)


def _loss_unscaled_gram(features, target_gram):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    g = torch.bmm(f, f.transpose(1, 2))
    return (g - target_gram).pow(2).sum(dim=(1, 2)).mean() / (4 * c * c)


def _loss_double_division(features, target_gram):
    m = features[0, 0].numel()
    return _style.layer_style_loss(features, target_gram) / m ** 2


def _loss_not_squared(features, target_gram):
    g = _style.gram(features)
    c = g.shape[-1]
    return (g - target_gram).pow(2).sum(dim=(1, 2)).sqrt().mean() / (4 * c * c)


def _loss_first_target(features, target_gram):
    return _style.layer_style_loss(features, target_gram[:1])


LOSS_MISTAKES = [
    Mistake(_loss_no_scale, "divide the sum of squared differences by 4 N_l^2 "
            "(N_l = the number of channels)."),
    Mistake(_loss_mean, "the sum over i, j divided by 4 N_l^2 is a mean over the C x C "
            "entries divided by 4: the 4 is missing."),
    Mistake(_loss_batch_sum, "average E_l over the images of the batch, do not sum."),
    Mistake(_loss_unscaled_gram, "the Gram matrix must be divided by the number of positions "
            "H W, as target_gram is (helpers' gram does it)."),
    Mistake(_loss_double_division, "gram already divides by M_l = H W: do not divide by "
            "M_l^2 again (that is Gatys et al.'s form with un-averaged Gram matrices)."),
    Mistake(_loss_not_squared, "square the differences G - G_hat and sum them (no square "
            "root: that would be a norm, not E_l)."),
    Mistake(_loss_first_target, "a target_gram of shape (N, C, C) holds one target per image: "
            "compare G[n] with target_gram[n] (G - target_gram broadcasts both shapes)."),
]


def gram_loss(student, model=None):
    """Check ``my_gram_loss(features, target_gram)`` -> ``style.layer_style_loss``:
    ``sum_ij (G - G_hat)^2 / (4 N_l^2)``, averaged over the batch."""
    model = course_model(model)
    layer = _style_layer(model, "blocks.3.act0")
    brick = _features(model, ["brick", "grass"], 64, layer)
    target = _style.gram(_features(model, ["gravel"], 80, layer))
    return run("gram loss", student, _style.layer_style_loss, [
        Case("random features of 1 image, 4 channels at 5x7",
             (noise((1, 4, 5, 7), 9), _style.gram(noise((1, 4, 6, 6), 10)))),
        Case("random features of a batch of 3, 6 channels at 9x11",
             (noise((3, 6, 9, 11), 11), _style.gram(noise((1, 6, 8, 8), 12)))),
        Case("random features of a batch of 2, 5 channels at 7x6, one target per image (2, 5, 5)",
             (noise((2, 5, 7, 6), 13), _style.gram(noise((2, 5, 8, 9), 14)))),
        Case(f"brick and grass at 64 px against gravel's Gram matrix at 80 px ({layer})",
             (brick, target)),
    ], compare=close_number, mistakes=LOSS_MISTAKES,
        hint="G = gram(features); E = ((G - target_gram) ** 2).sum over (i, j) / (4 C^2), "
             "then the mean over the batch.")
