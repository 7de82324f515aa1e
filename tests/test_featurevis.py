"""Activation maximization with the notebook's defaults: the class image is classified as the
class, the neuron's activation rises tenfold, the ablation switches map to arguments;
preconditioning, multifaceted starts from cluster means and the diversity penalty do what
they are for."""
import matplotlib.figure
import pytest
import torch

from helpers import fourier_image, leftover_hooks, pixel_image, predict
from helpers.featurevis import (DEFAULTS, FACET_SETTINGS, REGULARIZERS, ablation_settings,
                                activation, batch_gram_similarity, batches_figure, facet_clusters,
                                is_class_layer, multifaceted, multifaceted_figure,
                                mutual_similarity, regularization, target_objective,
                                thumbnail_distance, visualization_figure, visualize)
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


def test_toggling_one_ablation_switch_reruns_only_the_settings_not_seen_before(model,
                                                                              monkeypatch):
    import helpers.featurevis as fv
    calls, real = [], fv.visualize
    monkeypatch.setattr(fv, "visualize", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    fv._cached_run.cache_clear()
    fv.ablation_figure(model, 3, "blocks.1", switches=tuple((n, True) for n in REGULARIZERS),
                       size=32, steps=2)
    assert len(calls) == len(REGULARIZERS) + 2  # the chosen set, each toggled, none
    fv.ablation_figure(model, 3, "blocks.1", size=32, steps=2,
                       switches=tuple((n, n != "jitter") for n in REGULARIZERS))
    # New: the other switches toggled from the new set. Reused: the new set itself (it was
    # "without jitter"), "with jitter" (the old set) and "none".
    assert len(calls) == 2 * len(REGULARIZERS) + 1


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


def test_figure(model):
    fig = visualization_figure(model, 3, "blocks.4", size=48, steps=4)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    fig = visualization_figure(model, 3, "blocks.4", size=48, steps=4, param="fourier")
    assert "Fourier" in fig.axes[0].get_title()
    assert leftover_hooks(model) == []


def test_unknown_parameterization_names_the_valid_ones(model):
    with pytest.raises(ValueError, match="Unknown parameterization 'fft'.*'pixel', 'fourier'"):
        visualize(model, "flamingo", param="fft")


def _contrast_at_object_scale(images):
    """Standard deviation left after a blur of 4 px: large regions that differ, not grain."""
    return reg.gaussian_blur(images, 4.0).std(dim=(-2, -1)).mean().item()


def _p_transformed(model, image, target):
    """Mean p of the class over ten views: rotated by -10..10 degrees, shrunk to 90 % and 75 %.

    (Single views flip between runs: the optimized image differs in the last bits with the
    number of CPU threads, and one rotation can lose the class. The mean over ten does not.)"""
    import torchvision.transforms.v2.functional as TF
    views = [torch.nn.functional.interpolate(TF.rotate(image, a), scale_factor=s,
                                             mode="bilinear")
             for a in (-10, -5, 0, 5, 10) for s in (0.9, 0.75)]
    with torch.no_grad():
        return sum(model(v).softmax(1)[0, model.classes.index(target)].item()
                   for v in views) / len(views)


@pytest.mark.parametrize("target", ["flamingo", "goldfinch"])
def test_preconditioning_gives_larger_structures_that_survive_transformations(model, target):
    """Fourier + decorrelated colours + transforms, at the notebook's defaults: still the class,
    with about three times the contrast at object scale of pixels + Yosinski's regularizers
    (whose decay and blur leave a grey grain), and still the class when rotated and shrunk,
    which the pixel image is not. (It has *more* fine grain than the blurred pixel image.)"""
    fourier = visualize(model, target, param="fourier").image
    pixels = visualize(model, target).image
    (_, name, p), = predict(model, fourier, k=1)[0][:1]
    assert name == target and p >= 0.9, (name, p)
    assert _contrast_at_object_scale(fourier) > 2 * _contrast_at_object_scale(pixels)
    assert _p_transformed(model, fourier, target) > _p_transformed(model, pixels, target) + 0.3


# The offline data set has no gas masks, but its top crops for the class come from two
# different photos (a space helmet, a man behind a camera): real facets to find.
FACET_UNIT = "gasmask"


@pytest.fixture(scope="module")
def facets(model):
    return multifaceted(model, FACET_UNIT)  # the notebook's call


@pytest.fixture(scope="module")
def restarts(model):
    """Three restarts from noise with the facets' settings (the notebook's call)."""
    return visualize(model, FACET_UNIT, batch=3, **FACET_SETTINGS)


def test_facet_clusters_are_the_top_images_split_by_features(model, facets):
    clusters, scores = facets.clusters, facets.scores
    members = torch.cat(clusters)
    assert len(clusters) == 3 and len(members) == 24 and len(set(members.tolist())) == 24
    assert set(members.tolist()) == set(scores.argsort(descending=True)[:24].tolist())
    assert [len(c) for c in clusters] == sorted((len(c) for c in clusters), reverse=True)
    for c in clusters:  # each cluster's members by decreasing score
        assert torch.all(scores[c][:-1] >= scores[c][1:])
    # the starts are the cluster means
    assert torch.allclose(facets.starts[0], facets.data.images[clusters[0]].mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="k <= top"):
        facet_clusters(model, facets.data, FACET_UNIT, top=2, k=3)


def test_facets_differ_more_than_restarts_from_noise(model, facets, restarts):
    """Nguyen et al.'s point: starts from cluster means find different facets; restarts from
    noise (same steps, same settings, fixed seeds) find much the same image. Fails if the
    ascent wipes out the start (too many steps, too large a step) or if the clusters are
    alike (one photo only, as for "Egyptian cat" here)."""
    assert thumbnail_distance(facets.images) > 1.5 * thumbnail_distance(restarts.image)
    sources = [set(facets.data.labels[c].tolist()) for c in facets.clusters]
    assert len(set().union(*sources)) >= 2  # the top images come from more than one photo
    for image in facets.images:  # each facet is still the class, confidently
        (_, name, p), = predict(model, image, k=1)[0][:1]
        assert name == FACET_UNIT and p >= 0.9, (name, p)
    fig = multifaceted_figure(model, facets, FACET_UNIT)
    assert len(fig.axes) == 3 * 5
    assert leftover_hooks(model) == []


def test_diversity_lowers_the_batch_similarity_and_keeps_the_class(model, restarts):
    """Olah et al.'s penalty, at the notebook's settings: the same three noise starts end far
    less alike (Gram similarity at least halved) and every image is still the class."""
    start = activation(model, fourier_image(DEFAULTS["size"], batch=3, seed=0)(), FACET_UNIT)
    diverse = visualize(model, FACET_UNIT, batch=3, **FACET_SETTINGS,
                        diversity=DEFAULTS["diversity"])
    assert batch_gram_similarity(model, diverse.image) < \
        0.5 * batch_gram_similarity(model, restarts.image)
    after = activation(model, diverse.image, FACET_UNIT)
    assert min(after) > max(start) + 10, (start, after)
    for _, name, p in (top[0] for top in predict(model, diverse.image, k=1)):
        assert name == FACET_UNIT and p >= 0.9, (name, p)
    fig = batches_figure(model, {"plain": restarts.image, "diverse": diverse.image}, FACET_UNIT)
    assert len(fig.axes) == 6


def test_thumbnail_distance_sees_layout_not_fine_texture():
    g = torch.Generator().manual_seed(0)
    grey = torch.full((2, 3, 64, 64), 0.5)
    noisy = grey + 0.2 * torch.randn(2, 3, 64, 64, generator=g)   # fine texture only
    halves = grey.clone()
    halves[0, :, :, :32] = 0.9                                    # different layouts
    halves[1, :, :, 32:] = 0.1
    assert thumbnail_distance(grey) == 0
    assert thumbnail_distance(noisy) < 0.25 * thumbnail_distance(halves)
    # at full size the fine texture would count: RMS of the noise difference is about 0.28
    assert thumbnail_distance(noisy, size=64) > 0.6 * thumbnail_distance(halves, size=64)


def test_mutual_similarity_is_one_for_copies_and_lower_for_different_photos(model):
    from helpers import load_image
    cat, rocket = load_image("chelsea", 96), load_image("rocket", 96)
    assert mutual_similarity(model, torch.stack([cat, cat])) == pytest.approx(1.0, abs=1e-5)
    assert mutual_similarity(model, torch.stack([cat, rocket])) < 0.9
