"""The checks of 02_last_layer: the notebook's solutions pass, a stub is "not done yet", and the
usual wrong answers fail, each with its hint."""
import numpy as np
import pytest
import torch
from exercise_support import solution

from helpers import embedding
from helpers import exercises as check


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- nearest

def distances(features, queries, metric, normalize=True):
    f = features.float()
    q = f[queries]
    if metric == "cosine":
        if normalize:
            f, q = f / f.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)
        return 1 - q @ f.T
    return torch.cdist(q, f)


def smallest(d, queries, k):
    d[torch.arange(len(queries)), queries] = float("inf")
    top = d.topk(k, dim=1, largest=False)
    return top.indices, top.values


def cosine_without_norms(features, queries, k=5, metric="l2"):
    return smallest(distances(features, queries, metric, normalize=False), queries, k)


def query_is_its_own_neighbour(features, queries, k=5, metric="l2"):
    d = distances(features, queries, metric)
    order = d.argsort(dim=1)[:, :k]
    return order, d.gather(1, order)


def farthest(features, queries, k=5, metric="l2"):
    d = distances(features, queries, metric)
    d[torch.arange(len(queries)), queries] = float("inf")
    order = d.argsort(dim=1, descending=True)[:, 1:k + 1]  # skip the inf of the query itself
    return order, d.gather(1, order)


def squared_l2(features, queries, k=5, metric="l2"):
    f = features.float()
    if metric == "l2":
        d = ((f[queries][:, None] - f[None]) ** 2).sum(-1)
    else:
        d = distances(features, queries, metric)
    return smallest(d, queries, k)


def similarity(features, queries, k=5, metric="l2"):
    d = distances(features, queries, metric)
    if metric == "cosine":
        d = 1 - d
        d[torch.arange(len(queries)), queries] = -float("inf")
        top = d.topk(k, dim=1)
        return top.indices, top.values
    return smallest(d, queries, k)


def test_the_notebook_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.nearest(solution("02_last_layer", "my_nearest"))
    assert check.nearest(solution("02_last_layer", "my_nearest"), model)


def test_nearest_stub_is_not_done():
    assert check.nearest(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (cosine_without_norms, "normalize the rows"),
    (query_is_its_own_neighbour, "a query is its own nearest neighbour"),
    (farthest, "these are the farthest items"),
    (squared_l2, "not its square"),
    (similarity, "not the similarity"),
])
def test_nearest_rejects_the_usual_mistakes(wrong, hint):
    verdict = check.nearest(wrong)
    assert verdict.status == "failed"
    assert hint in verdict.message


def test_nearest_names_a_swapped_pair():
    def swapped(features, queries, k, metric):
        idx, dist = embedding.nearest(features, queries, k, metric)
        return dist, idx
    verdict = check.nearest(swapped)
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "the pair is (distances, indices): return (indices, distances)" in verdict.message


def test_nearest_names_a_missing_pair_in_one_line():
    verdict = check.nearest(lambda *args: query_is_its_own_neighbour(*args)[0])
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "should be a pair (indices, distances), got a Tensor" in verdict.message
    verdict = check.nearest(lambda f, q, k, m: (torch.zeros(len(q), k + 1).long(),
                                                torch.zeros(len(q), k + 1)))
    assert "the index matrix (Q, k) has shape (1, 3), expected (1, 2)" in verdict.message


# --------------------------------------------------------------------------- precision_at_k

def self_counted(features, labels, k=6, metric="l2"):
    idx, _ = embedding.nearest(features, features.float(), k, metric)  # vectors: self included
    return (labels[idx] == labels[:, None]).float().mean().item()


def per_item(features, labels, k=6, metric="l2"):
    idx, _ = embedding.nearest(features, torch.arange(len(labels)), k, metric)
    return (labels[idx] == labels[:, None]).float().mean(1)


def counted(features, labels, k=6, metric="l2"):
    idx, _ = embedding.nearest(features, torch.arange(len(labels)), k, metric)
    return (labels[idx] == labels[:, None]).float().sum(1).mean().item()


def always_l2(features, labels, k=6, metric="l2"):
    idx, _ = embedding.nearest(features, torch.arange(len(labels)), k)
    return (labels[idx] == labels[:, None]).float().mean().item()


def test_precision_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.precision_at_k(solution("02_last_layer", "my_precision_at_k"))
    assert check.precision_at_k(solution("02_last_layer", "my_precision_at_k"), model)


def test_precision_stub_is_not_done():
    assert check.precision_at_k(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (self_counted, "each item found itself"),
    (per_item, "average over all items"),
    (counted, "divide by k"),
    (always_l2, "the fraction with its label"),  # the metric ignored: the general hint
])
def test_precision_rejects_the_usual_mistakes(wrong, hint):
    verdict = check.precision_at_k(wrong)
    assert verdict.status == "failed"
    assert hint in verdict.message


def test_precision_reports_a_broadcasting_error_in_one_line():
    def broken(features, labels, k=6, metric="l2"):
        idx, _ = embedding.nearest(features, torch.arange(len(labels)), k, metric)
        return (labels[idx] == labels).float().mean().item()
    verdict = check.precision_at_k(broken)
    assert verdict.status == "failed" and len(verdict.message.splitlines()) == 1
    assert "your function raised RuntimeError" in verdict.message
    assert "return (labels[idx] == labels).float().mean().item()" in verdict.message


def test_precision_names_both_values():
    verdict = check.precision_at_k(counted)
    assert "precision@k: expected 0.6222, got 1.8667" in verdict.message


def test_precision_accepts_a_one_element_tensor():
    def as_tensor(features, labels, k=6, metric="l2"):
        return torch.tensor(embedding.precision_at_k(features, labels, k, metric))
    assert check.precision_at_k(as_tensor)


def test_precision_accepts_numpy_scalars_and_arrays():
    def numpy_float32(features, labels, k=6, metric="l2"):
        idx, _ = embedding.nearest(features, torch.arange(len(labels)), k, metric)
        return (labels[idx].numpy() == labels.numpy()[:, None]).astype(np.float32).mean()
    assert check.precision_at_k(numpy_float32)
    assert check.precision_at_k(lambda *args: np.array(numpy_float32(*args)))  # a 0-d array


@pytest.mark.parametrize("wrong, kind", [
    (lambda *args: str(embedding.precision_at_k(*args)), "got str"),
    (lambda *args: [embedding.precision_at_k(*args)], "got list"),
    (lambda *args: np.str_(embedding.precision_at_k(*args)), "got str_"),
])
def test_precision_still_rejects_what_is_not_a_number(wrong, kind):
    verdict = check.precision_at_k(wrong)
    assert verdict.status == "failed"
    assert f"the result should be a float, {kind}" in verdict.message
