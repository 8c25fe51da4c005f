"""Paper reference formulas for CondConv, SCConv and DWSConv, for the tests.

Written from the papers' equations with explicit loops and index arithmetic
(a direct convolution by kernel taps, pooling by windows, nearest upsampling
by index, batch norm by its formula), not with the modules' code paths or
``F.conv2d``, so that a module and its reference can only agree by both
being right. Everything is meant to run in float64 on tiny tensors.
"""
import torch


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def direct_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1,
                  groups=1):
    """Cross-correlation by summing one shifted, strided slice per kernel tap.

    ``y[b, o, i, j] = bias[o] + sum_{c in group(o), p, q}
    w[o, c, p, q] * xpad[b, c, i*s0 + p*d0, j*s1 + q*d1]``.
    """
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    batch, channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = weight.shape
    xpad = x.new_zeros(batch, channels, height + 2 * padding[0],
                       width + 2 * padding[1])
    xpad[:, :, padding[0]:padding[0] + height,
         padding[1]:padding[1] + width] = x
    out_h = (height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // \
        stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // \
        stride[1] + 1
    out = x.new_zeros(batch, out_channels, out_h, out_w)
    out_per_group = out_channels // groups
    for o in range(out_channels):
        g = o // out_per_group
        for c in range(in_per_group):
            channel = xpad[:, g * in_per_group + c]
            for p in range(kh):
                for q in range(kw):
                    top, left = p * dilation[0], q * dilation[1]
                    window = channel[:, top:top + stride[0] * (out_h - 1) + 1:
                                     stride[0],
                                     left:left + stride[1] * (out_w - 1) + 1:
                                     stride[1]]
                    out[:, o] += weight[o, c, p, q] * window
        if bias is not None:
            out[:, o] += bias[o]
    return out


def cond_conv_reference(x, experts, expert_bias, routing_weight,
                        routing_bias, stride, padding, dilation, groups):
    """CondConv (Yang et al. 2019), one example at a time.

    ``r = sigmoid(GAP(x) R^T + c)``; kernel ``sum_e r_e W_e``; bias
    ``sum_e r_e b_e``; output ``conv(x, kernel) + bias``.
    """
    outputs = []
    for b in range(x.shape[0]):
        pooled = x[b].mean(dim=(1, 2))
        routing = torch.sigmoid(routing_weight @ pooled + routing_bias)
        kernel = torch.zeros_like(experts[0])
        bias = None
        for e in range(experts.shape[0]):
            kernel = kernel + routing[e] * experts[e]
        if expert_bias is not None:
            bias = sum(routing[e] * expert_bias[e]
                       for e in range(experts.shape[0]))
        outputs.append(direct_conv2d(x[b:b + 1], kernel, bias, stride,
                                     padding, dilation, groups))
    return torch.cat(outputs)


def batch_norm_eval(x, mean, var, weight, bias, eps):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel."""
    shape = (1, -1, 1, 1)
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps) * \
        weight.view(shape) + bias.view(shape)


def average_pool(x, window):
    """Non-overlapping ``window`` average pooling, remainder dropped."""
    wh, ww = pair(window)
    out_h, out_w = x.shape[2] // wh, x.shape[3] // ww
    out = x.new_zeros(x.shape[0], x.shape[1], out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, i * wh:(i + 1) * wh,
                                j * ww:(j + 1) * ww].mean(dim=(2, 3))
    return out


def nearest_upsample(x, size):
    """Nearest resize: output ``i`` reads input ``floor(i * in / out)``."""
    rows = [(i * x.shape[2]) // size[0] for i in range(size[0])]
    cols = [(j * x.shape[3]) // size[1] for j in range(size[1])]
    return x[:, :, rows][:, :, :, cols]


def sc_conv_reference(x, params, pooling_r, stride, padding, dilation,
                      groups):
    """Self-calibrated conv (Liu et al. 2020), eval-mode norms.

    ``params[name] = (conv_weight, (mean, var, gamma, beta, eps))`` for
    ``name`` in k2, k3, k4. ``T1 = Up(K2(AvgPool_r(x)))``,
    ``Y' = K3(x) * sigmoid(x + T1)``, ``Y = K4(Y')``.
    """
    kernel = params['k3'][0].shape[2:]
    same = tuple(d * (k - 1) // 2 for k, d in zip(kernel, pair(dilation)))

    def conv_norm(name, inp, conv_stride, conv_padding):
        weight, norm = params[name]
        out = direct_conv2d(inp, weight, None, conv_stride, conv_padding,
                            dilation, groups)
        return batch_norm_eval(out, *norm)

    window = (min(pooling_r, x.shape[2]), min(pooling_r, x.shape[3]))
    calibration = conv_norm('k2', average_pool(x, window), 1, same)
    gate = torch.sigmoid(x + nearest_upsample(calibration, x.shape[2:]))
    return conv_norm('k4', conv_norm('k3', x, 1, same) * gate, stride,
                     padding)


def dws_conv_reference(x, depthwise, norms, pointwise, pointwise_bias,
                       stride, padding, dilation, groups, domain=None,
                       gate=None):
    """Multi-domain depthwise-separable conv (Guo et al. 2019), eval norms.

    Depthwise: each channel ``c`` convolved with its own ``k x k`` kernel of
    the domain; then the domain's norm; then the shared 1x1 conv, a matrix
    product over the channels of each group. With ``gate = (W1, b1, W2,
    b2)`` the domains are mixed by ``softmax(W2 relu(W1 GAP(x) + b1) + b2)``.
    """
    def branch(d):
        channels = []
        for c in range(x.shape[1]):
            channels.append(direct_conv2d(
                x[:, c:c + 1], depthwise[d][c:c + 1], None, stride, padding,
                dilation, 1))
        out = torch.cat(channels, dim=1)
        if norms is not None:
            out = batch_norm_eval(out, *norms[d])
        return out

    if gate is None:
        mixed = branch(domain)
    else:
        w1, b1, w2, b2 = gate
        logits = torch.relu(x.mean(dim=(2, 3)) @ w1.T + b1) @ w2.T + b2
        probs = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
        mixed = sum(probs[:, d].view(-1, 1, 1, 1) * branch(d)
                    for d in range(len(depthwise)))
    out_channels = pointwise.shape[0]
    in_per_group = pointwise.shape[1]
    out_per_group = out_channels // groups
    result = []
    for o in range(out_channels):
        g = o // out_per_group
        block = mixed[:, g * in_per_group:(g + 1) * in_per_group]
        value = torch.einsum('c,bchw->bhw', pointwise[o, :, 0, 0], block)
        if pointwise_bias is not None:
            value = value + pointwise_bias[o]
        result.append(value)
    return torch.stack(result, dim=1)


# --------------------------------------------------------------------------
# Small OpenMMLab models with a given conv_cfg, shared by the three test files
# (built from the real mmdet / mmseg classes; tiny channels where allowed).
# --------------------------------------------------------------------------
def build_mmdet_resnet50(conv_cfg):
    """mmdet ResNet-50 (all its convs, stem to stage 4), 8 base channels."""
    from mmdet.models.backbones import ResNet
    return ResNet(depth=50, base_channels=8, conv_cfg=conv_cfg,
                  out_indices=(0, 1, 2, 3))


def build_mmseg_resnetv1c(conv_cfg):
    """mmseg ResNetV1c-50 (deep stem of three 3x3 convs), 8 channels."""
    from mmseg.models.backbones import ResNetV1c
    return ResNetV1c(depth=50, stem_channels=8, base_channels=8,
                     conv_cfg=conv_cfg, out_indices=(0, 1, 2, 3))


def build_fpn(conv_cfg):
    from mmdet.models.necks import FPN
    return FPN(in_channels=[4, 8, 16, 32], out_channels=8, num_outs=5,
               add_extra_convs='on_input', conv_cfg=conv_cfg)


def build_ssd_neck(conv_cfg):
    from mmdet.models.necks import SSDNeck
    return SSDNeck(in_channels=(8, 16), out_channels=(8, 16, 8, 8, 8, 8),
                   level_strides=(2, 2, 1, 1), level_paddings=(1, 1, 0, 0),
                   l2_norm_scale=20., conv_cfg=conv_cfg)


def model_inputs(name):
    """Inputs for the builders above: a non-square image or feature maps."""
    if name in ('resnet50', 'resnetv1c'):
        return (torch.randn(2, 3, 64, 48),)
    if name == 'fpn':
        return (tuple(torch.randn(2, c, s, s + 2)
                      for c, s in zip([4, 8, 16, 32], [16, 8, 4, 2])),)
    return ((torch.randn(2, 8, 38, 38), torch.randn(2, 16, 19, 19)),)


MODEL_BUILDERS = {
    'resnet50': build_mmdet_resnet50,
    'resnetv1c': build_mmseg_resnetv1c,
    'fpn': build_fpn,
    'ssd_neck': build_ssd_neck,
}


def train_step(model, inputs):
    """init_weights, forward in train mode, backward; return the outputs."""
    model.init_weights()
    model.train()
    outputs = model(*inputs)
    loss = sum(out.pow(2).mean() for out in outputs)
    loss.backward()
    return outputs
