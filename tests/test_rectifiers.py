"""helpers.rectifiers: the guided and deconvnet rules on every rectifier call, by hand and vs Captum."""
import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop
from torch import nn

from helpers.attribution import deconvnet, guided_backprop, saliency

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")


def rel_err(ours, ref):
    """Largest difference relative to the reference map's largest magnitude."""
    return float((ours - ref).abs().max() / ref.abs().max())


def _captum_input(x):
    return x[None].clone().requires_grad_(True)


# ----------------------------------------------------------------------------- tiny known answers
class Tiny(nn.Module):
    """score = W2 act(W1 x) on a 1x1 'image': gradients worked out by hand."""

    def __init__(self, act):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        self.act = act
        self.fc = nn.Linear(2, 2, bias=False)
        self.classes = ["a", "b"]
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 0, 0], [0, -1.0, 0]]).view(2, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[-1.0, 3.0], [1.0, 1.0]]))
        self.requires_grad_(False)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


X = torch.tensor([0.75, 1.0, 0.25]).view(3, 1, 1)  # an image in [0, 1]; conv output z = (0.75, -1)


@pytest.mark.parametrize("act, grad, guided", [
    # z = (0.75, -1), class-0 weights (-1, 3): d/dz = (-1, 3) masked by the activation's slope.
    (nn.ReLU(), [-1.0, 0, 0], [0.0, 0, 0]),             # slope (1, 0): guided drops the -1
    (nn.ReLU(inplace=True), [-1.0, 0, 0], [0.0, 0, 0]),
    (nn.ReLU6(), [-1.0, 0, 0], [0.0, 0, 0]),
    (nn.LeakyReLU(0.1), [-1.0, -0.3, 0], [0.0, -0.3, 0]),  # slope (1, 0.1): keeps +0.3 at z1
    (F.relu, [-1.0, 0, 0], [0.0, 0, 0]),                # functional call inside forward
    (lambda z: z.relu_(), [-1.0, 0, 0], [0.0, 0, 0]),   # in-place tensor method
    (lambda z: F.hardtanh(z, 0.0, 0.5), [0.0, 0, 0], [0.0, 0, 0]),  # z0 = 0.75 is clipped
])
def test_tiny_known_answers(act, grad, guided):
    model = Tiny(act)
    assert torch.allclose(saliency(model, X, 0).flatten(), torch.tensor(grad).abs().amax())
    assert torch.allclose(guided_backprop(model, X, 0).flatten(), torch.tensor(guided))
    # Deconvnet ignores the forward pass: W1^T relu((-1, 3)) = (0, -3, 0) for every activation.
    assert torch.allclose(deconvnet(model, X, 0).flatten(), torch.tensor([0.0, -3.0, 0.0]))
    assert torch.allclose(guided_backprop(model, X, 0, rule="gradient").flatten(), torch.tensor(grad))


def test_functional_relu_is_treated_where_captum_is_not():
    """A network calling F.relu in forward: we treat it; Captum only hooks nn.ReLU modules."""
    torch.manual_seed(1)
    modular = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).eval()
    modular.requires_grad_(False)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.fc = modular[0], modular[2], modular[6]

        def forward(self, x):
            x = F.relu(self.c2(F.relu(self.c1(x))))
            return self.fc(x.mean((2, 3)))

    functional, x = Functional(), torch.rand(3, 12, 12)
    ref = GuidedBackprop(modular).attribute(_captum_input(x), target=2)[0]
    assert rel_err(guided_backprop(functional, x, 2), ref) < 1e-6
    plain = GuidedBackprop(functional).attribute(_captum_input(x), target=2)[0]
    assert rel_err(plain, ref) > 0.05  # Captum's limit: functional ReLUs keep the plain gradient
