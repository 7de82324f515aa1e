"""What the last layer knows: nearest neighbours, 2-D maps (PCA, t-SNE) and thumbnail maps.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep CNNs",
NeurIPS 2012 (neighbours in pixel vs feature space); van der Maaten & Hinton,
"Visualizing Data using t-SNE", JMLR 2008; the image map and its grid version
follow Karpathy's "t-SNE visualization of CNN codes"
(https://cs.stanford.edu/people/karpathy/cnnembed/).
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from .images import resize

METRICS = ["l2", "cosine"]


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"Unknown distance {metric!r}. Choose one of: {', '.join(METRICS)}.")


def pixel_vectors(images):
    """(N, 3, H, W) images -> (N, 3*H*W) float vectors: the raw "pixel space"."""
    return images.detach().float().flatten(1).cpu()


def distances(features, queries, metric="l2"):
    """(Q, N) distances between ``queries`` (Q, D) and ``features`` (N, D).

    ``"l2"`` is the Euclidean distance; ``"cosine"`` is 1 - cos(angle), in [0, 2].
    """
    _check_metric(metric)
    f, q = torch.as_tensor(features).float(), torch.as_tensor(queries).float()
    if metric == "cosine":
        return 1 - F.normalize(q, dim=1) @ F.normalize(f, dim=1).T
    return torch.cdist(q, f)


def nearest(features, queries, k=5, metric="l2"):
    """Indices (Q, k) and distances (Q, k) of the ``k`` nearest rows of ``features``.

    Args:
        features: (N, D).
        queries: indices into ``features`` (a query never returns itself) or (Q, D) vectors.
    """
    features = torch.as_tensor(features).float()
    as_index = not (isinstance(queries, torch.Tensor) and queries.is_floating_point())
    if as_index:
        idx = torch.as_tensor(queries, dtype=torch.long).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(features)):
            raise ValueError(f"Query indices must be in 0..{len(features) - 1}.")
        q = features[idx]
    else:
        q = queries.float().reshape(-1, features.shape[1])
    limit = len(features) - (1 if as_index else 0)
    if not 1 <= k <= limit:
        raise ValueError(f"k must be in 1..{limit}, got {k}.")
    d = distances(features, q, metric)
    if as_index:
        d[torch.arange(len(idx)), idx] = float("inf")
    top = d.topk(k, dim=1, largest=False)
    return top.indices, top.values


def precision_at_k(features, labels, k=6, metric="l2"):
    """Mean fraction of each item's ``k`` nearest neighbours (itself excluded) sharing its label."""
    labels = torch.as_tensor(labels)
    idx, _ = nearest(features, torch.arange(len(labels)), k, metric)
    return float((labels[idx] == labels[:, None]).float().mean())


def knn_accuracy(points, labels, k=5):
    """Leave-one-out accuracy of a ``k``-nearest-neighbour vote (ties: the nearer neighbour wins).

    On a 2-D map it measures how well clusters separate the labels.
    """
    labels = torch.as_tensor(labels)
    idx, _ = nearest(torch.as_tensor(np.asarray(points)).float(), torch.arange(len(labels)), k)
    votes = F.one_hot(labels[idx], int(labels.max()) + 1).float()
    votes = votes * (1 + 1e-3 * torch.linspace(1, 0, k))[None, :, None]  # break ties by rank
    return float((votes.sum(1).argmax(1) == labels).float().mean())


def pca_2d(features):
    """(N, D) -> (N, 2) projection on the two main principal components (scikit-learn)."""
    from sklearn.decomposition import PCA
    return PCA(n_components=2, random_state=0).fit_transform(np.asarray(features, dtype=np.float32))


def tsne_2d(features, perplexity=30.0, seed=0, pca_dims=50):
    """(N, D) -> (N, 2) t-SNE map (scikit-learn, Barnes-Hut), after PCA to ``pca_dims``.

    The PCA step keeps most of the variance and makes t-SNE several times faster.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    x = np.asarray(features, dtype=np.float32)
    if not 1 <= perplexity < len(x):
        raise ValueError(f"perplexity must be in [1, {len(x)}) for {len(x)} points, got {perplexity}.")
    from threadpoolctl import threadpool_limits

    from .device import busy_cpu
    # On a CPU that other jobs keep busy, one OpenMP thread is much faster than several.
    with threadpool_limits(1 if busy_cpu() else None):
        if pca_dims and x.shape[1] > pca_dims and len(x) > pca_dims:
            x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=seed).fit_transform(x)


# --------------------------------------------------------------------------- image maps

def _unit(points):
    p = np.asarray(points, dtype=np.float32)
    lo, hi = p.min(0), p.max(0)
    return (p - lo) / np.maximum(hi - lo, 1e-12)


def _thumb(image, side):
    return resize(torch.as_tensor(image).float(), side).clamp(0, 1).permute(1, 2, 0).numpy()


def image_map(images, points, canvas=1200, thumb=48):
    """Thumbnails pasted at their 2-D positions on a white canvas (later images on top).

    Args:
        images: (N, 3, H, W) in [0, 1]; points: (N, 2) map coordinates.
    Returns:
        (canvas, canvas, 3) float array in [0, 1].
    """
    if len(images) != len(points):
        raise ValueError(f"{len(images)} images but {len(points)} points.")
    out = np.ones((canvas, canvas, 3), dtype=np.float32)
    pos = _unit(points) * (canvas - thumb)
    for img, (x, y) in zip(images, pos):
        r, c = round(canvas - thumb - y), round(x)  # y up, as in a scatter plot
        out[r:r + thumb, c:c + thumb] = _thumb(img, thumb)
    return out


def grid_assignment(points, rows, cols):
    """Grid cell (row, col) for each point: the assignment that minimises the total squared move.

    Solved exactly with ``scipy.optimize.linear_sum_assignment`` (rows*cols >= N cells).
    """
    from scipy.optimize import linear_sum_assignment
    n = len(points)
    if rows * cols < n:
        raise ValueError(f"A {rows}x{cols} grid has fewer cells than the {n} points.")
    p = _unit(points)
    gy, gx = np.meshgrid(np.linspace(1, 0, rows), np.linspace(0, 1, cols), indexing="ij")
    cells = np.stack([gx.ravel(), gy.ravel()], 1)
    cost = ((p[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    point_idx, cell_idx = linear_sum_assignment(cost)
    out = np.zeros((n, 2), dtype=int)
    out[point_idx] = np.stack(np.divmod(cell_idx, cols), 1)
    return out


def grid_map(images, points, cols=None, thumb=40):
    """Thumbnails snapped to a full grid, keeping the map's layout (Karpathy's grid view).

    Returns:
        (rows*thumb, cols*thumb, 3) float array in [0, 1]; empty cells stay white.
    """
    n = len(images)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cells = grid_assignment(points, rows, cols)
    out = np.ones((rows * thumb, cols * thumb, 3), dtype=np.float32)
    for img, (r, c) in zip(images, cells):
        out[r * thumb:(r + 1) * thumb, c * thumb:(c + 1) * thumb] = _thumb(img, thumb)
    return out


# --------------------------------------------------------------------------- figures

# Query, same label, other label: told apart by a symbol and the frame's line style as well as
# its colour, so the grids read the same without colour vision (red and green look alike to
# about one man in twelve).
MARKS = {"query": ("tab:blue", "-", "?"), "same": ("tab:green", "-", "\u2713"),
         "other": ("tab:red", (0, (2, 1.5)), "\u2717")}


def _frame(ax, kind, width=3):
    colour, style, symbol = MARKS[kind]
    ax.set_xticks([]), ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour), spine.set_linewidth(width), spine.set_linestyle(style)
    ax.text(0.03, 0.97, symbol, transform=ax.transAxes, ha="left", va="top", fontsize=9,
            fontweight="bold", color="white", bbox={"boxstyle": "round,pad=0.15", "fc": colour,
                                                     "ec": "none"})


def _kind(c, same):
    return "query" if c == 0 else ("same" if same else "other")


LEGEND = "? query   \u2713 same label   \u2717 other label (dashed frame)"


def neighbour_grid(images, labels, classes, queries, neighbours, title=None, size=1.1):
    """Rows: a query (blue frame, "?") then its neighbours (see ``MARKS``: green frame and a check
    mark for the same label, red dashed frame and a cross for another)."""
    k = neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(size * (k + 1), size * len(queries) + 0.5),
                             squeeze=False)
    for r, (q, nbrs) in enumerate(zip(queries, neighbours)):
        for c, i in enumerate([int(q)] + [int(n) for n in nbrs]):
            ax = axes[r, c]
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            _frame(ax, _kind(c, labels[i] == labels[q]))
            if c == 0:
                ax.set_ylabel(classes[int(labels[i])], fontsize=8)
    fig.suptitle(f"{title}\n{LEGEND}" if title else LEGEND, fontsize=10 if title else 8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def compare_neighbours(images, labels, classes, feats, queries, k=6, metric="l2", size=1.0,
                       feature_name="feature space"):
    """The lecture's two grids side by side: neighbours in pixel space and in feature space.

    Titles give precision@k over the whole set (the fraction of neighbours sharing the label).
    """
    labels = torch.as_tensor(labels)
    spaces = [("pixel space", pixel_vectors(images)), (feature_name, feats)]
    fig = plt.figure(figsize=(2 * size * (k + 1) + 0.4, size * len(queries) + 0.7))
    subfigs = fig.subfigures(1, 2, wspace=0.04)
    for sub, (name, vecs) in zip(subfigs, spaces):
        idx, _ = nearest(vecs, queries, k, metric)
        prec = precision_at_k(vecs, labels, k, metric)
        axes = sub.subplots(len(queries), k + 1, squeeze=False)
        for r, (q, nbrs) in enumerate(zip(queries, idx)):
            for c, i in enumerate([int(q)] + nbrs.tolist()):
                ax = axes[r, c]
                ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
                same = labels[i] == labels[int(q)]
                _frame(ax, _kind(c, same))
        sub.suptitle(f"{name} ({metric}): precision@{k} = {prec:.2f}", fontsize=10)
    fig.supxlabel(LEGEND, fontsize=8)
    plt.close(fig)
    return fig


def scatter_maps(maps, labels, classes, titles, size=4.2):
    """Side-by-side 2-D maps, points coloured by label, each titled (e.g. with its k-NN accuracy)."""
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps) + 1.6, size), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    for ax, pts, title in zip(axes[0], maps, titles):
        pts = np.asarray(pts)
        for c, name in enumerate(classes):
            sel = labels == c
            ax.scatter(pts[sel, 0], pts[sel, 1], s=9, color=cmap(c % cmap.N), label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2,
                       frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def show_maps(images, points, thumb=40, canvas=900, title=None, size=6.0):
    """The free thumbnail map and its grid-snapped version, side by side."""
    free = image_map(images, points, canvas=canvas, thumb=thumb)
    grid = grid_map(images, points, thumb=thumb)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, img, t in zip(axes, [free, grid], ["thumbnails at t-SNE positions", "snapped to a grid"]):
        ax.imshow(img)
        ax.set_title(t, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


__all__ = [
    "METRICS",
    "compare_neighbours",
    "distances",
    "grid_assignment",
    "grid_map",
    "image_map",
    "knn_accuracy",
    "nearest",
    "neighbour_grid",
    "pca_2d",
    "pixel_vectors",
    "precision_at_k",
    "scatter_maps",
    "show_maps",
    "tsne_2d",
]
