"""Bad input to the public functions: one clear error that says what is valid, never a picture.

A held-out table, in the style of the issue that found the gaps: images with 0-255 values, NaN or
infinity, empty or smaller than the network takes, and sizes, strengths and counts out of range,
each against the public functions that take them. Every row asserts the error's type and that its
message names the valid choice (a value range, the smallest size); an error from deep inside
torch (a RuntimeError of a convolution) or a returned picture fails the row.
"""
import math

import numpy as np
import pytest
import torch

import helpers
from helpers.checks import check_count, check_size, check_strength
from helpers.images import as_batch
from helpers.models import min_input_size, model_input

G = torch.Generator().manual_seed(0)
PHOTO = torch.rand(3, 64, 64, generator=G)
UINT8_RANGE = PHOTO * 255                        # a 0-255 photo stored as floats
NORMALIZED = (PHOTO - 0.45) / 0.225              # ImageNet-normalized by hand
WITH_NAN = PHOTO.clone().index_put_((torch.tensor([0]), torch.tensor([5]), torch.tensor([5])),
                                     torch.tensor(float("nan")))
WITH_INF = PHOTO.clone().index_put_((torch.tensor([1]), torch.tensor([7]), torch.tensor([9])),
                                     torch.tensor(float("inf")))
EMPTY = torch.zeros(3, 0, 0)
TINY = torch.rand(3, 2, 2, generator=G)

RANGE = r"values in \[0, 1\]"
FINITE = r"NaN or infinite.*finite values in \[0, 1\]"
EMPTY_MSG = r"empty \(0x0 pixels\).*at least"
VALUES = [(UINT8_RANGE, RANGE + r".*0-255"), (NORMALIZED, RANGE + r".*normalized"),
          (WITH_NAN, FINITE), (WITH_INF, FINITE), (EMPTY, EMPTY_MSG)]
VALUE_IDS = ["0-255", "normalized", "nan", "inf", "0x0"]

# Public functions that take an image, called with cheap settings (the image is the bad part).
IMAGE_FUNCTIONS = {
    "as_batch": lambda m, x: as_batch(x),
    "model_input": lambda m, x: model_input(m, x),
    "predict": lambda m, x: helpers.predict(m, x),
    "saliency": lambda m, x: helpers.saliency(m, x, target=1),
    "smoothgrad": lambda m, x: helpers.saliency(m, x, target=1, noise=0.1, samples=2),
    "guided_backprop": lambda m, x: helpers.guided_backprop(m, x, target=1),
    "deconvnet": lambda m, x: helpers.deconvnet(m, x, target=1),
    "occlusion": lambda m, x: helpers.occlusion(m, x, target=1, window=1, stride=1),
    "channels_by_activation": lambda m, x: helpers.channels_by_activation(m, x, "blocks.3"),
    "deep_dream": lambda m, x: helpers.deep_dream(m, x, steps=1, octaves=1),
    "invert": lambda m, x: helpers.invert(m, x, "blocks.3", steps=1),
    "fgsm": lambda m, x: helpers.fgsm(m, x, [1]),
    "targeted_attack": lambda m, x: helpers.targeted_attack(m, x, [1], steps=1),
    "synthesize_texture": lambda m, x: helpers.synthesize_texture(m, x, steps=1),
    "style_transfer_content": lambda m, x: helpers.style_transfer(m, x, PHOTO, steps=1),
    "style_transfer_style": lambda m, x: helpers.style_transfer(m, PHOTO, x, steps=1),
    "visualize_start": lambda m, x: helpers.visualize(m, 1, start=x, steps=1),
    "extract_features": lambda m, x: helpers.extract_features(m, x[None] if x.dim() == 3 else x,
                                                              cache=False, progress=False),
    "activations": lambda m, x: helpers.hooks.activations(m, x, ["blocks.3"]),
}


@pytest.mark.parametrize("bad, message", VALUES, ids=VALUE_IDS)
@pytest.mark.parametrize("name", list(IMAGE_FUNCTIONS))
def test_bad_image_values_give_a_clear_error(model, name, bad, message):
    with pytest.raises(ValueError, match=message):
        IMAGE_FUNCTIONS[name](model, bad)


# Functions that run the whole network: an image smaller than it takes is refused by name of the
# smallest size. AlexNet (random weights: no download) takes 63x63 and more.
WHOLE_NETWORK = ["model_input", "predict", "saliency", "guided_backprop", "occlusion", "fgsm",
                 "targeted_attack", "deep_dream"]


@pytest.mark.parametrize("name", WHOLE_NETWORK)
def test_an_image_smaller_than_the_network_takes_names_the_smallest_size(untrained, name):
    alexnet = untrained("alexnet")
    with pytest.raises(ValueError, match=r"2x2 pixels.*at least 63x63"):
        IMAGE_FUNCTIONS[name](alexnet, TINY)


def test_min_input_size_is_the_smallest_side_that_runs(untrained):
    alexnet = untrained("alexnet")
    side = min_input_size(alexnet)
    assert side == 63
    with torch.no_grad():
        alexnet(torch.zeros(1, 3, side, side))
        with pytest.raises(RuntimeError):
            alexnet(torch.zeros(1, 3, side - 1, side - 1))
    assert not alexnet.training


def test_min_input_size_keeps_train_mode_and_gives_up_on_fixed_size_networks():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 2),
                              torch.nn.BatchNorm1d(2))
    net.train()
    assert min_input_size(net) is None  # takes only 5x5: no size is "smallest"
    assert net.training and net[2].training and int(net[2].num_batches_tracked) == 0
    assert model_input(net, torch.rand(3, 5, 5)).shape == (1, 3, 5, 5)


def test_the_offline_model_takes_any_nonempty_image(model):
    # TensorFlow "same" padding: EfficientNet-Lite0 runs down to 1x1 (the survey says so).
    assert min_input_size(model) == 1
    assert helpers.predict(model, TINY, k=1)[0][0][0] in range(1000)


# Sizes, strengths and counts at the public entry points.
NUMBERS = {
    "load_image size=0": (lambda m: helpers.load_image("chelsea", size=0), r"size must be a whole"),
    "load_image size=-5": (lambda m: helpers.load_image("chelsea", size=-5), r">= 1"),
    "load_image size=2.5": (lambda m: helpers.load_image("chelsea", size=2.5), r"whole number"),
    "resize 0": (lambda m: helpers.resize(PHOTO, 0), r"size must be a whole number of pixels >= 1"),
    "resize (0, 4)": (lambda m: helpers.resize(PHOTO, (0, 4)), r"\(H, W\) pair"),
    "visualize size=0": (lambda m: helpers.visualize(m, 1, size=0, steps=1),
                         r"(size|empty|at least 1x1)"),
    "visualize steps=-1": (lambda m: helpers.visualize(m, 1, size=32, steps=-1),
                           r"steps must be a whole number >= 0"),
    "visualize steps=2.5": (lambda m: helpers.visualize(m, 1, size=32, steps=2.5), r"whole number"),
    "visualize fourier size=0": (lambda m: helpers.visualize(m, 1, size=0, steps=1,
                                                             param="fourier"),
                                 r"size must be a whole number of pixels >= 1"),
    "fourier_image 0": (lambda m: helpers.fourier_image(0), r"size must be a whole number"),
    "pixel_image (4, -1)": (lambda m: helpers.pixel_image((4, -1)), r"size must be a whole"),
    "synthesize_texture size=0": (lambda m: helpers.synthesize_texture(m, PHOTO, size=0, steps=1),
                                  r"size must be a whole number"),
    "layers size=0": (lambda m: helpers.layers(m, size=0), r"size must be a whole number"),
    "num_channels size=-3": (lambda m: helpers.num_channels(m, "blocks.3", size=-3),
                             r"size must be a whole number"),
    "receptive_field size=0": (lambda m: helpers.receptive_field(m, "blocks.3", size=0),
                               r"size must be a whole number"),
    "top_patches 0x0 images": (lambda m: helpers.top_patches(m, "blocks.3", 0, EMPTY[None],
                                                             cache=False, progress=False),
                               r"images are empty"),
    "top_patches 0-255 images": (lambda m: helpers.top_patches(m, "blocks.3", 0, UINT8_RANGE[None],
                                                               cache=False, progress=False),
                                 RANGE),
    "gaussian_blur sigma=-1": (lambda m: helpers.gaussian_blur(PHOTO[None], -1.0),
                               r"sigma must be a finite number >= 0"),
    "gaussian_blur sigma=nan": (lambda m: helpers.gaussian_blur(PHOTO[None], math.nan),
                                r"sigma must be a finite number"),
    "fooling_images size=0": (lambda m: helpers.fooling_images(m, [1], size=0, steps=1),
                              r"(size|empty|at least 1x1)"),
    "fooling_images steps=-3": (lambda m: helpers.fooling_images(m, [1], size=32, steps=-3),
                                r"steps must be .*>= 0"),
    "deep_dream steps=-1": (lambda m: helpers.deep_dream(m, PHOTO, steps=-1), r"steps .*>= 1"),
    "deep_dream octaves=0": (lambda m: helpers.deep_dream(m, PHOTO, octaves=0), r"octaves .*>= 1"),
    "deep_dream octave_scale=0.5": (lambda m: helpers.deep_dream(m, PHOTO, octave_scale=0.5),
                                    r"octave_scale .*>= 1"),
    "deep_dream step_size=nan": (lambda m: helpers.deep_dream(m, PHOTO, step_size=math.nan),
                                 r"step_size must be a finite number"),
    "deep_dream jitter=-2": (lambda m: helpers.deep_dream(m, PHOTO, jitter=-2), r"jitter .*>= 0"),
    "deep_dream 8x8 image": (lambda m: helpers.deep_dream(m, PHOTO[:, :8, :8], steps=1),
                             r"8x8 pixels.*at least 16x16"),
    "invert tv_strength=-1": (lambda m: helpers.invert(m, PHOTO, "blocks.3", tv_strength=-1),
                              r"tv_strength must be a finite number >= 0"),
    "invert steps=-1": (lambda m: helpers.invert(m, PHOTO, "blocks.3", steps=-1),
                        r"steps must be .*>= 0"),
    "invert sd=inf": (lambda m: helpers.invert(m, PHOTO, "blocks.3", sd=math.inf), r"sd must be"),
    "synthesize_texture steps=-1": (lambda m: helpers.synthesize_texture(m, PHOTO, steps=-1),
                                    r"steps must be .*>= 0"),
    "style_transfer steps=-1": (lambda m: helpers.style_transfer(m, PHOTO, PHOTO, steps=-1),
                                r"steps >= 0"),
    "predict k=0": (lambda m: helpers.predict(m, PHOTO, k=0), r"k must be a whole number in 1\.\.1000"),
    "predict k=1001": (lambda m: helpers.predict(m, PHOTO, k=1001), r"in 1\.\.1000"),
    "photos size=0": (lambda m: helpers.photos(n_per_class=1, size=0), r"size >= 8"),
    "saliency noise=nan": (lambda m: helpers.saliency(m, PHOTO, noise=math.nan),
                           r"noise must be a finite number >= 0"),
    "saliency samples=0": (lambda m: helpers.saliency(m, PHOTO, noise=0.1, samples=0),
                           r"samples must be a whole number >= 1"),
    "targeted_attack steps=-1": (lambda m: helpers.targeted_attack(m, PHOTO, 1, steps=-1),
                                 r"steps must be a whole number >= 1"),
    "targeted_attack step_size=-0.1": (lambda m: helpers.targeted_attack(m, PHOTO, 1,
                                                                         step_size=-0.1),
                                       r"step_size must be a finite number >= 0"),
    "fooling_images confidence=1.5": (lambda m: helpers.fooling_images(m, [1], size=32,
                                                                       confidence=1.5),
                                      r"confidence must be a finite number in \[0, 1\]"),
    "visualize batch=0": (lambda m: helpers.visualize(m, 1, size=32, steps=1, batch=0),
                          r"batch must be a whole number >= 1"),
    "l2 strength=nan": (lambda m: helpers.l2(math.nan), r"strength must be a finite number"),
    "tv strength=-1": (lambda m: helpers.tv(-1.0), r"strength must be a finite number >= 0"),
    "style_transfer style_weight=-1": (lambda m: helpers.style_transfer(m, PHOTO, PHOTO,
                                                                        style_weight=-1.0),
                                       r"style_weight must be a finite number >= 0"),
    "style_transfer content_weight=nan": (lambda m: helpers.style_transfer(
        m, PHOTO, PHOTO, content_weight=math.nan), r"content_weight must be a finite number"),
    "pixel_image 0": (lambda m: helpers.optimize(m, helpers.pixel_image(0), helpers.class_score(1),
                                                 steps=1, progress=False),
                      r"(size|empty|at least 1x1)"),
}


@pytest.mark.parametrize("name", list(NUMBERS))
def test_bad_sizes_strengths_and_counts_give_a_clear_error(model, name):
    call, message = NUMBERS[name]
    with pytest.raises(ValueError, match=message):
        call(model)


@pytest.mark.parametrize("check, args, message", [
    (check_size, (0,), r"size must be a whole number of pixels >= 1 or an \(H, W\) pair"),
    (check_size, ((3, 0),), r"got \(3, 0\)"),
    (check_size, ((3, 4, 5),), r"\(H, W\) pair"),
    (check_size, (True,), r"got True"),
    (check_size, ("224",), r"got '224'"),
    (check_count, (-1, "steps"), r"steps must be a whole number >= 1, got -1"),
    (check_count, (3.5, "samples"), r"samples must be a whole number >= 1, got 3.5"),
    (check_count, (11, "k", 1, 10), r"k must be a whole number in 1\.\.10, got 11"),
    (check_strength, (math.nan, "noise"), r"noise must be a finite number >= 0, got nan"),
    (check_strength, (-0.1, "eps", 0.0, 1.0), r"eps must be a finite number in \[0, 1\]"),
    (check_strength, ("a lot", "weight"), r"weight must be a finite number"),
])
def test_checks_name_what_is_valid(check, args, message):
    with pytest.raises(ValueError, match=message):
        check(*args)


def test_checks_pass_good_values_through():
    assert check_size(224) == 224 and check_size((3, 4)) == (3, 4)
    assert check_size(np.int64(5)) == 5 and check_size(None, allow_none=True) is None
    assert check_count(np.int64(3), "n") == 3 and check_strength(1, "w") == 1.0


def test_good_images_pass_unchanged(model):
    # Rounding in a resize may overshoot [0, 1] by a hair: accepted, not an error.
    x = PHOTO.clone()
    x[0, 0, 0], x[1, 0, 0] = 1.0 + 1e-5, -1e-5
    assert torch.equal(as_batch(x)[0], x)
    assert as_batch(np.zeros((3, 4, 4), np.uint8)).shape == (1, 3, 4, 4)  # zeros are in range
    assert model_input(model, PHOTO).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("array, message", [
    (np.full((8, 8, 3), np.nan, np.float32), r"NaN or infinite"),
    (np.full((8, 8, 3), -1.0, np.float32), r"values from -1 to -1.*\[0, 1\] \(or 0-255\)"),
    (np.full((8, 8, 3), 1000.0, np.float32), r"\[0, 1\] \(or 0-255\)"),
    (np.zeros((0, 0, 3), np.uint8), r"empty"),
])
def test_load_image_refuses_arrays_it_cannot_read_as_a_photo(array, message):
    with pytest.raises(ValueError, match=message):
        helpers.load_image(array)


def test_load_image_still_reads_0_255_float_arrays():
    a = np.full((8, 8, 3), 255.0, np.float32)
    assert torch.allclose(helpers.load_image(a, size=None), torch.ones(3, 8, 8))
