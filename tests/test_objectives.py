"""Objectives: values equal hand computations, the algebra composes, bad input fails early."""
import pytest
import torch

from helpers import LayerError
from helpers.objectives import (Objective, channel, class_score, cross_entropy, diversity,
                                gram_similarity, l2, layer_norm, neuron, total_variation, tv,
                                weighted_sum)


@pytest.fixture
def rec():
    g = torch.Generator().manual_seed(1)
    return {"a": torch.randn(2, 4, 5, 7, generator=g), "fc": torch.randn(2, 6, generator=g),
            "output": torch.randn(2, 10, generator=g)}


@pytest.fixture
def image():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))


def test_builders_equal_hand_computations(rec, image):
    a = rec["a"]
    assert torch.isclose(class_score(3)(rec, image), -rec["output"][:, 3].mean())
    assert torch.isclose(class_score([3, 7])(rec, image),
                         -(rec["output"][0, 3] + rec["output"][1, 7]) / 2)
    assert torch.isclose(channel("a", 2)(rec, image), -a[:, 2].mean())
    assert torch.isclose(channel("fc", 5)(rec, image), -rec["fc"][:, 5].mean())
    # centre of a 5x7 map is row 2, column 3
    assert torch.isclose(neuron("a", 1)(rec, image), -a[:, 1, 2, 3].mean())
    assert torch.isclose(neuron("a", 1, x=6, y=0)(rec, image), -a[:, 1, 0, 6].mean())
    assert torch.isclose(layer_norm("a")(rec, image), -(a ** 2).mean())
    assert torch.isclose(l2(3.0)(rec, image), 3 * ((image - 0.5) ** 2).mean())
    assert torch.isclose(cross_entropy(4)(rec, image),
                         torch.nn.functional.cross_entropy(rec["output"], torch.tensor([4, 4])))


def test_total_variation_formula(image):
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    assert torch.isclose(total_variation(image), (dx ** 2 + dy ** 2).mean())
    assert torch.isclose(tv(2.0, beta=1)({}, image), 2 * (dx ** 2 + dy ** 2 + 1e-8).sqrt().mean())
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert total_variation(flat) == 0 and l2()({}, torch.full((1, 3, 4, 4), 0.5)) == 0


def test_algebra_composes_values_layers_and_names(rec, image):
    a, b, c = channel("a", 0), neuron("fc", 1), class_score(2)
    combo = a + 2 * b - c / 4 + 1.5
    expect = a(rec, image) + 2 * b(rec, image) - c(rec, image) / 4 + 1.5
    assert torch.isclose(combo(rec, image), expect)
    assert combo.layers == {"a", "fc", "output"}
    assert "channel(a, 0)" in combo.name and "class_score(2)" in combo.name
    assert torch.isclose((-a)(rec, image), -a(rec, image))
    assert torch.isclose((1 - a)(rec, image), 1 - a(rec, image))
    assert torch.isclose(sum([a, b])(rec, image), a(rec, image) + b(rec, image))
    w = weighted_sum([a, b, c], [0.5, -1, 2])
    assert torch.isclose(w(rec, image), 0.5 * a(rec, image) - b(rec, image) + 2 * c(rec, image))
    with pytest.raises(ValueError, match="one weight per objective"):
        weighted_sum([a, b], [1.0])
    with pytest.raises(TypeError):
        a * b


def test_gradients_flow_to_the_image():
    x = torch.rand(1, 3, 6, 6, requires_grad=True)
    loss = (l2(1.0) + tv(1.0))({}, x)
    g, = torch.autograd.grad(loss, x)
    assert g.abs().sum() > 0


def test_checks_against_a_real_model(model):
    obj = channel("blocks.5", 7) + class_score("tabby") + neuron("blocks.2", 3)
    obj.check(model, 64)  # valid: no error
    with pytest.raises(ValueError, match=r"Channel 999 is out of range.*0\.\.79"):
        channel("blocks.5", 999).check(model, 64)
    with pytest.raises(LayerError, match="Did you mean"):
        layer_norm("block.5").check(model, 64)
    with pytest.raises(ValueError, match="out of range: valid are 0..999"):
        class_score(1000).check(model, 64)
    with pytest.raises(ValueError, match="matches 0 classes"):
        class_score("no such class").check(model, 64)


def test_class_names_resolve_through_check(model, rec, image):
    obj = class_score("tabby")
    with pytest.raises(ValueError, match="need a model"):
        obj(rec, image)
    obj.check(model)
    out = torch.zeros(1, 1000)
    out[0, 281] = 5.0
    assert obj({"output": out}, image) == -5.0  # tabby is class 281


def test_neuron_position_outside_map_is_a_clear_error(rec, image):
    with pytest.raises(ValueError, match=r"outside layer 'a'.*x in 0..6, y in 0..4"):
        neuron("a", 0, x=7, y=0)(rec, image)


def test_objective_wraps_any_function(rec, image):
    custom = Objective(lambda r, img: r["a"].abs().sum(), {"a"}, "abs")
    assert (custom - custom)(rec, image) == 0
    assert custom.layers == {"a"} and repr(custom) == "Objective(abs)"
    with pytest.raises(ValueError, match="beta must be positive"):
        tv(beta=0)


def test_gram_similarity_by_hand():
    """Same mix of features (anywhere in the map) -> 1; features that never co-occur -> 0."""
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0, 0, 0] = 3.0                       # only channel 0, top-left
    b = torch.zeros(1, 2, 2, 2)
    b[0, 0, 1, 1] = 1.0                       # only channel 0, elsewhere, weaker: same Gram up to scale
    c = torch.zeros(1, 2, 2, 2)
    c[0, 1, 0, 1] = 2.0                       # only channel 1
    assert gram_similarity(torch.cat([a, b])).item() == pytest.approx(1.0)
    assert gram_similarity(torch.cat([a, c])).item() == pytest.approx(0.0)
    # three images: pairs (a,b)=1, (a,c)=0, (b,c)=0 -> mean over the 3 pairs
    assert gram_similarity(torch.cat([a, b, c])).item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least 2 images"):
        gram_similarity(a)


def test_diversity_penalty_is_the_scaled_similarity_and_its_gradient_separates():
    torch.manual_seed(0)
    feats = (torch.rand(3, 4, 5, 5) + 1).requires_grad_()
    rec = {"blocks.4": feats}
    penalty = diversity("blocks.4", 50.0)
    assert penalty.layers == {"blocks.4"} and "diversity(blocks.4)" in penalty.name
    value = penalty(rec, None)
    assert value.item() == pytest.approx(50 * gram_similarity(feats).item())
    value.backward()
    with torch.no_grad():  # a small step down the gradient lowers the similarity
        assert gram_similarity(feats - 1e-2 * feats.grad).item() < gram_similarity(feats).item()


def test_gram_similarity_matches_lucent_diversity():
    """Lucent's ``diversity`` returns -sum over ordered pairs / B; ours is the mean over pairs."""
    lucent = pytest.importorskip("lucent.optvis.objectives")
    feats = torch.rand(4, 6, 3, 3, generator=torch.Generator().manual_seed(3))
    theirs = lucent.diversity("x")(lambda name: feats).item()
    assert gram_similarity(feats).item() == pytest.approx(-theirs / 3, rel=1e-5)
