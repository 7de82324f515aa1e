"""Checks for 02_last_layer: nearest neighbours in a feature space, and precision@k.

``nearest``: ``student(features, queries, k, metric) -> (indices, distances)``, each (Q, k),
nearest first, the query itself excluded, as ``embedding.nearest`` with index queries.
``precision_at_k``: ``student(features, labels, k, metric) -> float``, as
``embedding.precision_at_k``. Inputs: random clusters and real photo crops (their pixels and the
model's outputs).
"""
import functools
import math
import numbers

import numpy as np
import torch

from .. import embedding
from ..data import photos
from ..device import model_device
from . import verdict
from .verdict import Case, Mismatch, Mistake

__all__ = ["nearest", "precision_at_k"]


def _clusters(classes, per_class, dim, noise, seed):
    """(N, dim) points around ``classes`` random centres, rows scaled by different lengths (so
    cosine and L2 rank differently), and their (N,) labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    labels = torch.arange(classes).repeat_interleave(per_class)
    x = centres[labels] + noise * torch.randn(len(labels), dim, generator=g)
    lengths = 0.2 + 3 * torch.rand(len(labels), 1, generator=g)
    order = torch.randperm(len(labels), generator=g)
    return (x * lengths)[order], labels[order]


@functools.lru_cache(maxsize=1)
def _crops():
    """12 photo crops at 32 px (4 each of 3 photos) and their labels, built once."""
    data = photos(n_per_class=4, size=32, sources=["chelsea", "coffee", "rocket"], seed=1)
    return data.images, data.labels


def _real(model):
    """(pixel vectors, model outputs, labels) of the photo crops."""
    images, labels = _crops()
    with torch.no_grad():
        outputs = model(images.to(model_device(model))).float().cpu()
    return embedding.pixel_vectors(images), outputs, labels


# --------------------------------------------------------------------------- nearest

def _reference(features, queries, k, metric):
    return embedding.nearest(features, queries, k, metric)


def _ranked(d, k, largest=False):
    top = d.topk(k, dim=1, largest=largest)
    return top.indices, top.values


def _no_self(d, queries):
    d = d.clone()
    d[torch.arange(len(queries)), queries] = float("inf")
    return d


def _unnormalized(features, queries, k, metric):
    if metric != "cosine":
        raise ValueError("only for cosine")
    f = features.float()
    return _ranked(_no_self(1 - f[queries] @ f.T, queries), k)


def _with_self(features, queries, k, metric):
    return _ranked(embedding.distances(features, features[queries], metric), k)


def _farthest(features, queries, k, metric):
    d = embedding.distances(features, features[queries], metric)
    d[torch.arange(len(queries)), queries] = -float("inf")
    return _ranked(d, k, largest=True)


def _squared(features, queries, k, metric):
    if metric != "l2":
        raise ValueError("only for l2")
    idx, dist = embedding.nearest(features, queries, k, metric)
    return idx, dist ** 2


def _similarity(features, queries, k, metric):
    if metric != "cosine":
        raise ValueError("only for cosine")
    idx, dist = embedding.nearest(features, queries, k, metric)
    return idx, 1 - dist


NEAREST_MISTAKES = [
    Mistake(_unnormalized, "cosine distance is 1 - a.b / (|a| |b|): normalize the rows "
                           "(F.normalize(x, dim=1)) before the dot product."),
    Mistake(_with_self, "a query is its own nearest neighbour (distance 0): set the distance "
                        "from each query to itself to inf before picking the k smallest."),
    Mistake(_farthest, "these are the farthest items: topk picks the largest values unless you "
                       "pass largest=False (or sort the distances in ascending order)."),
    Mistake(_squared, "return the Euclidean distance itself, not its square."),
    Mistake(_similarity, "return the cosine distance 1 - cos, not the similarity cos."),
]


def _compare_neighbours(got, expected):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        kind = f"a {type(got).__name__}" + (f" of {len(got)}" if isinstance(got, (tuple, list))
                                            else "")
        raise Mismatch(f"the result should be a pair (indices, distances), got {kind}")
    indices = got[0]
    if isinstance(indices, torch.Tensor) and indices.is_floating_point() and \
            isinstance(got[1], torch.Tensor) and not got[1].is_floating_point():
        raise Mismatch("the pair is (distances, indices): return (indices, distances)")
    verdict.close(indices, expected[0], what="the index matrix (Q, k)")
    verdict.close(got[1], expected[1], what="the distance matrix (Q, k)")


def nearest(student, model=None):
    """Check ``student(features, queries, k, metric)`` against ``embedding.nearest``.

    ``queries`` are (Q,) indices into ``features``; the model (default ``verdict.tiny_cnn()``)
    gives the feature vectors of the real crops.
    """
    model = verdict.tiny_cnn() if model is None else model
    pixels, outputs, _ = _real(model)
    x, _ = _clusters(4, 6, 16, 1.0, seed=7)
    relu = _clusters(3, 5, 10, 1.0, seed=8)[0].clamp_min(0)
    few = torch.randn(8, 5, generator=torch.Generator().manual_seed(9))
    cases = [
        Case("8 random 5-d vectors, query [3], k=2, l2", (few, torch.tensor([3]), 2, "l2")),
        Case("24 random 16-d vectors, queries [0, 7, 23], k=4, l2",
             (x, torch.tensor([0, 7, 23]), 4, "l2")),
        Case("24 random 16-d vectors, queries [0, 7, 23], k=4, cosine",
             (x, torch.tensor([0, 7, 23]), 4, "cosine")),
        Case("15 random ReLU vectors, queries [14, 2], k=5, cosine",
             (relu, torch.tensor([14, 2]), 5, "cosine")),
        Case("the pixels of 12 photo crops, queries [1, 6, 10], k=3, l2",
             (pixels, torch.tensor([1, 6, 10]), 3, "l2")),
        Case(f"the model's outputs {tuple(outputs.shape)} for 12 photo crops, queries [0, 5], "
             "k=4, cosine", (outputs, torch.tensor([0, 5]), 4, "cosine")),
    ]
    return verdict.run("nearest", student, _reference, cases, compare=_compare_neighbours,
                       mistakes=NEAREST_MISTAKES,
                       hint="distances from each query to every row, the query itself set to "
                            "inf, then the k smallest in ascending order (topk(k, "
                            "largest=False)).")


# --------------------------------------------------------------------------- precision_at_k

def _precision(features, labels, k, metric):
    return embedding.precision_at_k(features, labels, k, metric)


def _hits(features, labels, k, metric, own=False):
    if own:
        idx, _ = _ranked(embedding.distances(features, features, metric), k)
    else:
        idx, _ = embedding.nearest(features, torch.arange(len(labels)), k, metric)
    return (labels[idx] == labels[:, None]).float()


def _counting_self(features, labels, k, metric):
    return float(_hits(features, labels, k, metric, own=True).mean())


def _per_item(features, labels, k, metric):
    return _hits(features, labels, k, metric).mean(1)


def _count(features, labels, k, metric):
    return float(_hits(features, labels, k, metric).sum(1).mean())


PRECISION_MISTAKES = [
    Mistake(_counting_self, "each item found itself as its nearest neighbour: exclude it (pass "
                            "indices as queries to embedding.nearest, or set the diagonal of the "
                            "distances to inf)."),
    Mistake(_per_item, "average over all items: precision@k is one number, not one per item."),
    Mistake(_count, "divide by k: the fraction of the k neighbours that share the label, not "
                    "their number."),
]


def _as_number(got):
    """``got`` as a float: a real number, a NumPy scalar, or a tensor or array of one element."""
    if isinstance(got, (torch.Tensor, np.ndarray, np.generic)):
        if math.prod(got.shape) != 1:
            kind = "tensor" if isinstance(got, torch.Tensor) else "array"
            raise Mismatch(f"the result should be one number, got a {kind} of shape "
                           f"{tuple(got.shape)}")
        value = got.item()
    else:
        value = got
    if not isinstance(value, numbers.Real):
        raise Mismatch(f"the result should be a float, got {type(got).__name__}")
    return float(value)


def _compare_number(got, expected):
    if isinstance(expected, torch.Tensor):  # a mistake's per-item output
        verdict.close(got, expected)
        return
    got, expected = _as_number(got), float(expected)
    if abs(got - expected) > 1e-5 + 1e-4 * abs(expected):
        raise Mismatch(f"precision@k: expected {expected:.4f}, got {got:.4f}")


def precision_at_k(student, model=None):
    """Check ``student(features, labels, k, metric) -> float`` against
    ``embedding.precision_at_k`` (every item is a query, itself excluded)."""
    model = verdict.tiny_cnn() if model is None else model
    pixels, outputs, labels = _real(model)
    x, y = _clusters(3, 5, 8, 1.2, seed=10)
    z, w = _clusters(4, 6, 16, 1.5, seed=11)
    cases = [
        Case("15 random 8-d vectors in 3 classes, k=3, l2", (x, y, 3, "l2")),
        Case("24 random 16-d vectors in 4 classes, k=5, cosine", (z, w, 5, "cosine")),
        Case("24 random 16-d vectors in 4 classes, k=1, l2", (z, w, 1, "l2")),
        Case("the pixels of 12 photo crops in 3 classes, k=3, l2", (pixels, labels, 3, "l2")),
        Case("the model's outputs for 12 photo crops, k=2, cosine",
             (outputs, labels, 2, "cosine")),
    ]
    return verdict.run("precision_at_k", student, _precision, cases, compare=_compare_number,
                       mistakes=PRECISION_MISTAKES,
                       hint="for every item: its k nearest neighbours (itself excluded), the "
                            "fraction with its label; then the mean over all items.")
