# CondConv-MobileNetV1 SSD300 on COCO (CondConv paper, COCO detection:
# MobileNetV1 SSD300 20.3 -> 22.4 mAP). CondConv with 8 experts in the
# later layers: the depthwise and pointwise convs of blocks 6-12 (the
# stride-16 512-channel blocks and the stride-32 blocks), where the paper
# finds CondConv pays off most; the stem and early blocks stay plain.
_base_ = './ssd300_mobilenetv1_8xb8-24e_coco.py'

model = dict(
    backbone=dict(
        condconv_blocks=(6, 7, 8, 9, 10, 11, 12),
        condconv_cfg=dict(type='CondConv', num_experts=8)))
