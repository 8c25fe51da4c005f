"""The official multi-domain ResNet-26, rewritten as functional torch code.

Guo et al., AAAI 2019, github.com/yunhuiguo/Depthwise_Convolution_for_
Multiple_Domain_Learning: ``models/resnet.py`` ``FlatResNet26`` with
``models/base.py`` (hard sharing: domain ``task_id``'s depthwise kernels and
BNs) and ``models/resnet_sharing.py`` with ``models/base_sharing.py`` (soft
sharing: every separable conv mixes all domains' depthwise outputs with
``softmax(fc2(relu(fc1(GAP(x)))))``, ``fc1``: C -> C // 4 + 1; one BN per
layer), ``config_task.factor = 1``, ``layers = [4, 4, 4]``. The Python-2
code cannot be imported as it is; this is its forward, written from it line
by line on a state dict in its key layout, for the tests. It uses none of
mmconvplug's classes.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F

#: FlatResNet26's widths and strides (factor = 1).
STEM = 64
FILT_SIZES = (128, 256, 512)
LAYERS = (4, 4, 4)


def official_state_dict(num_domains, num_classes=None, sharing=False,
                        seed=0, batches_tracked=True, dtype=torch.float64):
    """A random state dict in the official key layout.

    Args:
        num_domains: ``nb_tasks``: depthwise kernels per separable conv (and,
            without ``sharing``, BNs and FC heads per layer).
        num_classes: classes of each FC head (one head with ``sharing``);
            None: 10 each.
        sharing: the ``resnet_sharing`` layout (gates, one BN per layer).
        batches_tracked: write ``num_batches_tracked`` (PyTorch >= 0.4).

    Returns:
        OrderedDict: the tensors, BN statistics random (as trained).
    """
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    bn_domains = 1 if sharing else num_domains

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=gen, dtype=dtype) * std

    def separable(prefix, cin, cout):
        for d in range(num_domains):
            state[f'{prefix}.depthwise.{d}.weight'] = randn(
                cin, 1, 3, 3, std=(1.0 / 9)**0.5)
        state[f'{prefix}.pointwise.weight'] = randn(
            cout, cin, 1, 1, std=(1.0 / cin)**0.5)
        if sharing:
            hidden = cin // 4 + 1
            state[f'{prefix}.action_network.fc1.weight'] = randn(
                hidden, cin, std=cin**-0.5)
            state[f'{prefix}.action_network.fc1.bias'] = randn(hidden,
                                                               std=0.1)
            state[f'{prefix}.action_network.fc2.weight'] = randn(
                num_domains, hidden, std=hidden**-0.5)
            state[f'{prefix}.action_network.fc2.bias'] = randn(num_domains,
                                                               std=0.1)

    def one_bn(name, channels):
        state[f'{name}.weight'] = 0.75 + 0.5 * torch.rand(
            channels, generator=gen, dtype=dtype)
        state[f'{name}.bias'] = randn(channels, std=0.1)
        state[f'{name}.running_mean'] = randn(channels, std=0.1)
        state[f'{name}.running_var'] = 0.5 + torch.rand(
            channels, generator=gen, dtype=dtype)
        if batches_tracked:
            state[f'{name}.num_batches_tracked'] = torch.tensor(100)

    def bn(prefix, channels):  # nn.ModuleList of BatchNorm2d
        for d in range(bn_domains):
            one_bn(f'{prefix}.{d}', channels)

    separable('conv1', 3, STEM)
    bn('pre_bn', STEM)
    in_planes = STEM
    for s, (planes, blocks) in enumerate(zip(FILT_SIZES, LAYERS)):
        for b in range(blocks):
            separable(f'blocks.{s}.{b}.SeparableConv2d1', in_planes, planes)
            bn(f'blocks.{s}.{b}.bns1', planes)
            separable(f'blocks.{s}.{b}.SeparableConv2d2', planes, planes)
            bn(f'blocks.{s}.{b}.bns2', planes)
            in_planes = planes
    for d in range(bn_domains):  # bns[d] = Sequential(BatchNorm2d, ReLU)
        one_bn(f'bns.{d}.0', FILT_SIZES[-1])
    if num_classes is None:
        num_classes = (10, ) * num_domains
    heads = num_classes[:1] if sharing else num_classes
    for d, classes in enumerate(heads):
        state[f'fcs.{d}.weight'] = randn(classes, FILT_SIZES[-1], std=0.05)
        state[f'fcs.{d}.bias'] = randn(classes, std=0.1)
    return state


def flat_resnet26(state, x, task_id, sharing=False):
    """The official forward, eval mode.

    Args:
        state: an :func:`official_state_dict`-layout state dict.
        x (Tensor): images, (N, 3, H, W), H and W divisible by 8.
        task_id (int): the domain (BN, FC head and, without ``sharing``, the
            depthwise kernels); 0 with ``sharing`` (one BN per layer).
        sharing: the ``resnet_sharing`` forward (every layer gated).

    Returns:
        tuple: the outputs of the three stages (the last after
        ``bns[task_id]``, BN + ReLU) and the FC logits.
    """
    num_domains = sum(1 for k in state
                      if k.startswith('conv1.depthwise.'))

    def batch_norm(prefix, inp):
        return F.batch_norm(inp, state[f'{prefix}.running_mean'],
                            state[f'{prefix}.running_var'],
                            state[f'{prefix}.weight'],
                            state[f'{prefix}.bias'], training=False,
                            momentum=0.1, eps=1e-5)

    def depthwise(prefix, inp, d, stride):
        return F.conv2d(inp, state[f'{prefix}.depthwise.{d}.weight'], None,
                        stride, 1, 1, inp.shape[1])

    def separable(prefix, inp, stride):
        if sharing:  # base_sharing.SeparableConv2d, cnt_depth 0..24
            action_input = torch.mean(inp.view(inp.size(0), inp.size(1), -1),
                                      dim=2)
            hidden = F.relu(F.linear(
                action_input, state[f'{prefix}.action_network.fc1.weight'],
                state[f'{prefix}.action_network.fc1.bias']))
            prob = F.softmax(F.linear(
                hidden, state[f'{prefix}.action_network.fc2.weight'],
                state[f'{prefix}.action_network.fc2.bias']), dim=1)
            mixed = sum(prob[:, d].unsqueeze(1).unsqueeze(2).unsqueeze(3) *
                        depthwise(prefix, inp, d, stride)
                        for d in range(num_domains))
        else:
            mixed = depthwise(prefix, inp, task_id, stride)
        return F.conv2d(mixed, state[f'{prefix}.pointwise.weight'])

    def downsample_b(inp):  # DownsampleB: AvgPool2d(2), cat zeros
        residual = F.avg_pool2d(inp, 2)
        return torch.cat((residual, residual * 0), 1)

    t = 0 if sharing else task_id
    x = batch_norm(f'pre_bn.{t}', separable('conv1', x, 1))  # seed: no ReLU
    stages = []
    for s, blocks in enumerate(LAYERS):
        for b in range(blocks):
            residual = downsample_b(x) if b == 0 else x
            out = separable(f'blocks.{s}.{b}.SeparableConv2d1', x,
                            2 if b == 0 else 1)
            out = F.relu(batch_norm(f'blocks.{s}.{b}.bns1.{t}', out))
            out = separable(f'blocks.{s}.{b}.SeparableConv2d2', out, 1)
            out = batch_norm(f'blocks.{s}.{b}.bns2.{t}', out)
            x = F.relu(residual + out)
        stages.append(x)
    x = F.relu(batch_norm(f'bns.{t}.0', x))
    stages[-1] = x
    pooled = F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1)
    logits = F.linear(pooled, state[f'fcs.{t}.weight'], state[f'fcs.{t}.bias'])
    return tuple(stages), logits
