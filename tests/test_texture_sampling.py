"""Efros & Leung texture synthesis: every pixel is copied from the sample, patches are continued."""
import pytest
import torch

import helpers
from helpers.texture_sampling import efros_leung, sampling_figure, source_map


def _periodic(period=5, side=30, seed=0):
    """A sample that repeats a tile of ``period`` x ``period`` distinct random colours."""
    tile = torch.rand(3, period, period, generator=torch.Generator().manual_seed(seed))
    reps = -(-side // period)
    return tile.repeat(1, reps, reps)[:, :side, :side]


def _windows(image, k):
    """Set of the k x k windows of a (3, H, W) image, as rounded tuples."""
    cols = torch.nn.functional.unfold(image[None], k)[0].T
    return {tuple(torch.round(v * 1e4).int().tolist()) for v in cols}


def test_every_pixel_is_copied_from_where_source_says():
    sample = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(1))
    r = efros_leung(sample, size=16, window=5, seed=3)
    assert r.image.shape == (3, 16, 16) and r.source.shape == (16, 16, 2)
    assert r.image.dtype == torch.float32
    assert (r.source >= 0).all(), "every output pixel has a source"
    rows, cols = r.source[..., 0], r.source[..., 1]
    assert torch.equal(r.image, sample[:, rows, cols])
    # Sources are centres of complete windows (the paper compares whole neighbourhoods) ...
    inner = r.source[~_seed_mask(r, 3)]
    assert inner.min() >= 2 and inner.max() <= 17
    # ... and the colours exist in the sample, independently of ``source``.
    pixels = {tuple(p) for p in sample.reshape(3, -1).T.tolist()}
    assert all(tuple(p) in pixels for p in r.image.reshape(3, -1).T.tolist())


def _seed_mask(r, seed_size):
    m = torch.zeros(r.image.shape[-2:], dtype=torch.bool)
    oy, ox = r.seed_at
    m[oy:oy + seed_size, ox:ox + seed_size] = True
    return m


def test_seed_region_is_a_piece_of_the_sample():
    sample = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(2))
    r = efros_leung(sample, size=20, window=7, seed_size=4, seed=5)
    oy, ox = r.seed_at
    sy, sx = r.source[oy, ox].tolist()
    assert torch.equal(r.image[:, oy:oy + 4, ox:ox + 4], sample[:, sy:sy + 4, sx:sx + 4])
    assert (oy, ox) == (8, 8), "the seed sits in the middle of the output"


def test_periodic_sample_is_continued_exactly():
    """With exact matches available, every output window is a window of the sample: the method
    continues the texture instead of scattering its pixels."""
    sample = _periodic(period=5, side=30)
    r = efros_leung(sample, size=24, window=7, epsilon=0.1, seed=0)
    assert _windows(r.image, 5) <= _windows(sample, 5)


def test_natural_texture_is_grown_from_coherent_pieces():
    """On a real texture, neighbouring output pixels mostly come from neighbouring sample pixels,
    far more often than if each pixel were drawn independently from the sample."""
    sample = helpers.load_image("brick", 64)[:, 16:48, 16:48]
    r = efros_leung(sample, size=24, window=9, seed=0)
    shuffled = r.source.reshape(-1, 2)[torch.randperm(24 * 24, generator=torch.Generator().manual_seed(0))]
    control = type(r)(r.image, shuffled.reshape(24, 24, 2), r.seed_at, r.window, r.epsilon)
    assert r.coherence() > 0.3 > 5 * control.coherence()


def test_deterministic_with_a_seed_and_seed_changes_it():
    sample = helpers.load_image("gravel", 40)
    a = efros_leung(sample, size=16, window=5, seed=0)
    b = efros_leung(sample, size=16, window=5, seed=0)
    c = efros_leung(sample, size=16, window=5, seed=1)
    assert torch.equal(a.image, b.image) and torch.equal(a.source, b.source)
    assert not torch.equal(a.source, c.source)


def test_epsilon_zero_copies_the_best_match():
    sample = _periodic(period=4, side=20, seed=3)
    r = efros_leung(sample, size=12, window=5, epsilon=0.0, seed=0)
    assert _windows(r.image, 4) <= _windows(sample, 4)


def test_bad_input_gives_clear_errors():
    sample = torch.rand(3, 20, 20)
    with pytest.raises(ValueError, match=r"odd integer >= 3 \(3, 5, 7"):
        efros_leung(sample, window=8)
    with pytest.raises(ValueError, match="odd integer"):
        efros_leung(sample, window=1)
    with pytest.raises(ValueError, match=r"too small for a 19x19 window.*at least 21 px"):
        efros_leung(sample, window=19)
    with pytest.raises(ValueError, match="too small"):
        efros_leung(torch.rand(3, 6, 40), window=5)
    with pytest.raises(ValueError, match="seed_size must be an integer between 1 and 8"):
        efros_leung(sample, size=8, window=5, seed_size=9)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        efros_leung(sample, window=5, epsilon=-0.5)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        efros_leung(sample, size=0, window=5)


def test_source_map_and_figure():
    sample = torch.rand(3, 16, 16)
    r = efros_leung(sample, size=10, window=5)
    m = source_map(r, sample.shape)
    assert m.shape == (3, 10, 10) and 0 <= m.min() and m.max() <= 1
    fig = sampling_figure(sample, [r])
    assert len(fig.axes) == 3
