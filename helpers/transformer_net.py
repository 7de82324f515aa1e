"""The image transformation network of fast style transfer, with conditional instance norm.

Johnson, Alahi & Fei-Fei, "Perceptual losses for real-time style transfer and
super-resolution" (ECCV 2016) train a feed-forward network once per style; a photo is then
stylized in one forward pass. Dumoulin, Shlens & Kudlur, "A learned representation for
artistic style" (ICLR 2017) share every convolution between N styles and give each style
only its own scale and shift (gamma, beta) after each instance normalization; a convex mix
of those pairs blends the styles.

The layout follows Johnson et al. with instance norm (Ulyanov, Vedaldi & Lempitsky, 2016)
and upsampling by nearest-neighbour resize then convolution (Odena, Dumoulin & Olah,
"Deconvolution and checkerboard artifacts", Distill 2016); the channels are slimmed
(16/32/64 instead of 32/64/128) so that it trains and runs on a laptop CPU.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConditionalInstanceNorm(nn.Module):
    """Instance norm followed by a per-style scale and shift (Dumoulin et al., 2017).

    ``gamma`` and ``beta`` are (S, C) tables, one row per style; a mix ``w`` (N, S) of
    styles uses ``w @ gamma`` and ``w @ beta``. A one-hot ``w`` picks a row exactly.
    """

    def __init__(self, channels, n_styles, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))

    def forward(self, x, mix):
        # The statistics in two passes, in x's own memory layout: F.instance_norm and
        # torch.var_mean copy or crawl on channels-last tensors (10x slower on a CPU here),
        # and E[x^2] - E[x]^2 loses the variance when the mean is large.
        mean = x.mean((2, 3), keepdim=True)
        centred = x - mean
        var = (centred * centred).mean((2, 3), keepdim=True)
        g = (mix @ self.gamma)[:, :, None, None]
        b = (mix @ self.beta)[:, :, None, None]
        return centred * (g * torch.rsqrt(var + self.eps)) + b


class ConvNorm(nn.Module):
    """Reflection padding, convolution, conditional instance norm, optional ReLU."""

    def __init__(self, c_in, c_out, kernel, n_styles, stride=1, relu=True):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        self.norm = ConditionalInstanceNorm(c_out, n_styles)
        self.relu = relu

    def forward(self, x, mix, size=None):
        if size is not None:  # resize then convolve: no checkerboard (Odena et al., 2016)
            x = F.interpolate(x, size=size, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), mix)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """Two 3x3 conv-norm layers and a skip connection (He et al., 2016; Johnson et al.)."""

    def __init__(self, channels, n_styles):
        super().__init__()
        self.a = ConvNorm(channels, channels, 3, n_styles)
        self.b = ConvNorm(channels, channels, 3, n_styles, relu=False)

    def forward(self, x, mix):
        return x + self.b(self.a(x, mix), mix)


class TransformerNet(nn.Module):
    """Photo in, stylized photo out: (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1].

    Two stride-2 convolutions down, ``n_residual`` residual blocks, two resize-then-convolve
    steps up, a 9x9 convolution and a sigmoid. Every normalization is conditional: the
    network knows ``styles`` (names) and ``forward(x, mix)`` takes a (N, S) or (S,) convex
    mix of them (``mix_weights`` turns names and dicts into one).

    Args:
        styles: style names, one row of each (gamma, beta) table per name.
        channels: widths of the three resolutions (Johnson et al. use (32, 64, 128)).
        n_residual: residual blocks at the lowest resolution (Johnson et al.: 5).
        seed: seed of the initial weights.
    """

    def __init__(self, styles=("style",), channels=(16, 32, 64), n_residual=5, seed=0):
        super().__init__()
        self.styles = list(styles)
        self.channels, self.n_residual = tuple(int(c) for c in channels), int(n_residual)
        if not self.styles or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"Need distinct style names, got {self.styles}.")
        s, (c1, c2, c3) = len(self.styles), self.channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.down = nn.ModuleList([ConvNorm(3, c1, 9, s), ConvNorm(c1, c2, 3, s, stride=2),
                                       ConvNorm(c2, c3, 3, s, stride=2)])
            self.residual = nn.ModuleList([Residual(c3, s) for _ in range(self.n_residual)])
            self.up = nn.ModuleList([ConvNorm(c3, c2, 3, s), ConvNorm(c2, c1, 3, s)])
            self.pad = nn.ReflectionPad2d(4)
            self.out = nn.Conv2d(c1, 3, 9)

    def config(self):
        """What ``TransformerNet(**config)`` needs to rebuild this network."""
        return {"styles": list(self.styles), "channels": list(self.channels),
                "n_residual": self.n_residual}

    def norms(self):
        """The conditional instance norms, input to output."""
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def forward(self, x, mix=None):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"TransformerNet needs (N, 3, H, W) images, got {tuple(x.shape)}.")
        mix = mix_weights(self.styles, mix).to(x.device, x.dtype)
        if mix.dim() == 1:
            mix = mix.expand(x.shape[0], -1)
        sizes = []
        for layer in self.down:
            sizes.append(x.shape[-2:])
            x = layer(x, mix)
        for block in self.residual:
            x = block(x, mix)
        x = self.up[0](x, mix, size=sizes[2])
        x = self.up[1](x, mix, size=sizes[1])
        return torch.sigmoid(polyphase_conv(self.pad(x), self.out))


def polyphase_conv(x, conv, s=2):
    """``conv(x)`` (stride 1, no padding) as a stride-``s`` convolution with ``s * s`` times the
    output channels, then ``pixel_shuffle``: the same sums in the same order.

    Output channel (c, a, b) of the strided convolution is conv's kernel c shifted by (a, b),
    so it computes the output pixels (s i + a, s j + b). A convolution with three outputs
    (the network's last, 9x9) leaves a CPU's vector lanes mostly idle; with twelve it runs
    about 3x faster (bench/bench_fast_style.py).
    """
    w = conv.weight
    c, k, kh, kw = w.shape
    shifted = [F.pad(w, (b, s - 1 - b, a, s - 1 - a)) for a in range(s) for b in range(s)]
    weight = torch.stack(shifted, 1).reshape(c * s * s, k, kh + s - 1, kw + s - 1)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(s * s)
    h, wd = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
    if h % s or wd % s:  # whole s x s cells; the extra rows and columns are cut below
        x = F.pad(x, (0, -wd % s, 0, -h % s))
    return F.pixel_shuffle(F.conv2d(x, weight, bias, stride=s), s)[..., :h, :wd]


def with_styles(net, styles):
    """A copy of ``net`` that knows ``styles``: the same convolutions, a new (gamma, beta) table.

    Rows of styles ``net`` knows are copied; a new style starts from the mean row of the known
    ones, so that training only the table (Dumoulin et al., Sec. 4: a new style is a new row)
    starts from an average painting instead of from scratch.
    """
    new = TransformerNet(styles, net.channels, net.n_residual)
    state = net.state_dict()
    for key, value in new.state_dict().items():
        if key.endswith((".gamma", ".beta")):
            old = state[key]
            rows = [old[net.styles.index(s)] if s in net.styles else old.mean(0)
                    for s in new.styles]
            value.copy_(torch.stack(rows))
        else:
            value.copy_(state[key])
    return new.to(next(net.parameters()).device)


def mix_weights(styles, mix=None, tol=1e-4):
    """A style, or a mix of styles, as weights over ``styles``: (S,) or (N, S) float tensor.

    Args:
        styles: the network's style names.
        mix: None (the first style), a name, an index, ``{name: weight}``, a sequence of S
            weights, or a (S,) / (N, S) tensor. Weights must be >= 0 and sum to 1 (a convex
            mix, Dumoulin et al., Fig. 7).
    Raises:
        ValueError naming the valid styles for unknown names and weights that are negative
        or do not sum to 1.
    """
    styles = list(styles)
    valid = f"valid styles: {', '.join(styles)}"
    if mix is None:
        mix = 0
    if isinstance(mix, str):
        mix = {mix: 1.0}
    if isinstance(mix, int) and not isinstance(mix, bool):
        if not 0 <= mix < len(styles):
            raise ValueError(f"Style index {mix} out of range 0..{len(styles) - 1}; {valid}.")
        w = torch.zeros(len(styles))
        w[mix] = 1.0
        return w
    if isinstance(mix, dict):
        unknown = [k for k in mix if k not in styles]
        if unknown:
            raise ValueError(f"Unknown style {', '.join(map(repr, unknown))}; {valid}.")
        w = torch.zeros(len(styles))
        for k, v in mix.items():
            w[styles.index(k)] = float(v)
    else:
        w = torch.as_tensor(mix, dtype=torch.float32)
        if w.shape[-1:] != (len(styles),) or w.dim() > 2:
            raise ValueError(f"A mix needs {len(styles)} weights (one per style), got shape "
                             f"{tuple(w.shape)}; {valid}.")
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"Style weights must be >= 0, got {w.tolist()}; {valid}.")
    total = w.sum(-1)
    if ((total - 1).abs() > tol).any():
        raise ValueError(f"Style weights must sum to 1, got {total.tolist()} "
                         f"from {w.tolist()}; {valid}.")
    return w


__all__ = ["ConditionalInstanceNorm", "TransformerNet", "mix_weights", "polyphase_conv",
           "with_styles"]
