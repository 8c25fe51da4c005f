"""An independent SCNet in the official module layout, for tests.

Written from the structure of the official code (MCG-NKU/SCNet
``scnet.py``, the version with ``scnet50_v1d``): module names, Sequential
indices and forward order are the official ones, so its ``state_dict()`` is
an official checkpoint's layout (``conv1``/``conv1.0..6``, ``bn1``,
``layerN.M.{conv1_a,bn1_a,conv1_b,bn1_b,k1,scconv.k2/k3/k4,conv3,bn3,
downsample}``, ``fc``) and its forward is the official model's. It shares no
code with ``mmconvplug``. ``base`` scales every width (official: 64) so
tests can use thin models.
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _conv(cin, cout, k, stride=1, dilation=1):
    pad = dilation if k == 3 else 0
    return nn.Conv2d(cin,
                     cout,
                     k,
                     stride=stride,
                     padding=pad,
                     dilation=dilation,
                     bias=False)


class OfficialSCConv(nn.Module):
    """k2: pool, conv, BN; k3: conv, BN; k4: conv (stride), BN."""

    def __init__(self, planes, stride, dilation, pooling_r=4):
        super().__init__()
        self.k2 = nn.Sequential(nn.AvgPool2d(pooling_r, pooling_r),
                                _conv(planes, planes, 3, dilation=dilation),
                                nn.BatchNorm2d(planes))
        self.k3 = nn.Sequential(_conv(planes, planes, 3, dilation=dilation),
                                nn.BatchNorm2d(planes))
        self.k4 = nn.Sequential(
            _conv(planes, planes, 3, stride=stride, dilation=dilation),
            nn.BatchNorm2d(planes))

    def forward(self, x):
        gate = torch.sigmoid(x + F.interpolate(self.k2(x), x.shape[2:]))
        return self.k4(self.k3(x) * gate)


class OfficialSCBottleneck(nn.Module):
    expansion = 4

    def __init__(self,
                 inplanes,
                 planes,
                 stride=1,
                 downsample=None,
                 avd=False,
                 dilation=1,
                 is_first=False):
        super().__init__()
        width = planes // 2
        self.conv1_a = _conv(inplanes, width, 1)
        self.bn1_a = nn.BatchNorm2d(width)
        self.conv1_b = _conv(inplanes, width, 1)
        self.bn1_b = nn.BatchNorm2d(width)
        self.avd = avd and (stride > 1 or is_first)
        if self.avd:
            self.avd_layer = nn.AvgPool2d(3, stride, padding=1)
            stride = 1
        self.k1 = nn.Sequential(
            _conv(width, width, 3, stride=stride, dilation=dilation),
            nn.BatchNorm2d(width))
        self.scconv = OfficialSCConv(width, stride, dilation)
        self.conv3 = _conv(width * 2, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        a = F.relu(self.bn1_a(self.conv1_a(x)))
        b = F.relu(self.bn1_b(self.conv1_b(x)))
        a = F.relu(self.k1(a))
        b = F.relu(self.scconv(b))
        if self.avd:
            a, b = self.avd_layer(a), self.avd_layer(b)
        out = self.bn3(self.conv3(torch.cat([a, b], dim=1)))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class OfficialSCNet(nn.Module):
    """``scnet50`` / ``scnet101`` (``v1d=False``) or ``scnet50_v1d``
    (``v1d=True``: deep stem of width ``base / 2``, avg-down, avd);
    ``dilated=True`` is the official output-stride-8 mode."""

    def __init__(self,
                 depth=50,
                 v1d=False,
                 base=64,
                 dilated=False,
                 num_classes=1000):
        super().__init__()
        stem_width = base // 2
        self.avg_down = self.avd = v1d
        self.inplanes = base
        if v1d:
            self.conv1 = nn.Sequential(_conv(3, stem_width, 3, stride=2),
                                       nn.BatchNorm2d(stem_width),
                                       nn.ReLU(inplace=True),
                                       _conv(stem_width, stem_width, 3),
                                       nn.BatchNorm2d(stem_width),
                                       nn.ReLU(inplace=True),
                                       _conv(stem_width, stem_width * 2, 3))
        else:
            self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks = DEPTHS[depth]
        self.layer1 = self._make_layer(base, blocks[0], is_first=False)
        self.layer2 = self._make_layer(base * 2, blocks[1], stride=2)
        if dilated:
            self.layer3 = self._make_layer(base * 4, blocks[2], dilation=2)
            self.layer4 = self._make_layer(base * 8, blocks[3], dilation=4)
        else:
            self.layer3 = self._make_layer(base * 4, blocks[2], stride=2)
            self.layer4 = self._make_layer(base * 8, blocks[3], stride=2)
        self.fc = nn.Linear(base * 8 * 4, num_classes)

    def _make_layer(self, planes, blocks, stride=1, dilation=1, is_first=True):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            layers = []
            if self.avg_down:
                kernel = stride if dilation == 1 else 1
                layers.append(
                    nn.AvgPool2d(kernel,
                                 kernel,
                                 ceil_mode=True,
                                 count_include_pad=False))
                layers.append(_conv(self.inplanes, planes * 4, 1))
            else:
                layers.append(_conv(self.inplanes, planes * 4, 1, stride))
            layers.append(nn.BatchNorm2d(planes * 4))
            downsample = nn.Sequential(*layers)
        first_dilation = 2 if dilation == 4 else 1
        layers = [
            OfficialSCBottleneck(self.inplanes, planes, stride, downsample,
                                 self.avd, first_dilation, is_first)
        ]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(
                OfficialSCBottleneck(self.inplanes,
                                     planes,
                                     avd=self.avd,
                                     dilation=dilation))
        return nn.Sequential(*layers)

    def features(self, x) -> Sequence[torch.Tensor]:
        """The four stage outputs (the official forward before avgpool)."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            outs.append(x)
        return outs


@torch.no_grad()
def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every weight and BN statistic a random value (a trained-looking
    checkpoint: BN affine and running stats away from 1/0)."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        shape = tensor.shape
        if name.endswith('running_var'):
            value = torch.rand(shape, generator=generator) + 0.5
        elif name.endswith(('running_mean', 'bias')):
            value = torch.randn(shape, generator=generator) * 0.1
        elif tensor.dim() == 1:  # BN weight
            value = torch.rand(shape, generator=generator) * 0.5 + 0.75
        else:  # conv / fc: He-scaled so activations stay O(1) in depth
            fan_in = tensor[0].numel()
            value = torch.randn(shape,
                                generator=generator) * (1.0 / fan_in)**0.5
        tensor.copy_(value)
    return model.eval()


def official_state_dict(depth=50,
                        v1d=False,
                        base=64,
                        seed=0,
                        old_torch=True) -> Dict[str, torch.Tensor]:
    """A state dict in the official checkpoint layout (random values).

    ``old_torch=True`` drops ``num_batches_tracked`` as the official
    checkpoints (saved with PyTorch < 0.4.1 conventions) do.
    """
    model = randomized(OfficialSCNet(depth, v1d=v1d, base=base), seed)
    state = model.state_dict()
    if old_torch:
        state = {
            k: v
            for k, v in state.items() if not k.endswith('num_batches_tracked')
        }
    return state
