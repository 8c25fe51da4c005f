# CondConv-MobileNetV1 SSD300 on COCO (CondConv paper, COCO detection:
# MobileNetV1 SSD300 20.3 -> 22.4 mAP). CondConv with 8 experts in the
# later layers: the depthwise and pointwise convs of blocks 6-12 (the
# stride-16 512-channel blocks and the stride-32 blocks), where the paper
# finds CondConv pays off most; the stem and early blocks stay plain.
#
# Init: from scratch, as the baseline config (no published ImageNet
# MobileNetV1 in an OpenMMLab layout). From a plain MobileNetV1 checkpoint
# in this backbone's keys: `python tools/convert_pretrained.py mbv1.pth
# mbv1_condconv8.pth --variant condconv --config THIS_CONFIG` (every expert
# starts as the plain kernel, so the model computes the plain network), then
# backbone init_cfg=dict(type='Pretrained', checkpoint='mbv1_condconv8.pth').
# Given the plain checkpoint unconverted, the load stops naming the expert
# tensors (CondConv stores a stack of kernels under `weight`).
_base_ = './ssd300_mobilenetv1_8xb8-24e_coco.py'

model = dict(
    backbone=dict(
        condconv_blocks=(6, 7, 8, 9, 10, 11, 12),
        condconv_cfg=dict(type='CondConv', num_experts=8)))
