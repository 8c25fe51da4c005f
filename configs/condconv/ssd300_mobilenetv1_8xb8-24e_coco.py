# MobileNetV1 SSD300 on COCO: the plain baseline of the CondConv paper's
# detection experiment (TF Object Detection API ssd_mobilenet_v1 layout:
# features from block 10 (19x19, 512 ch) and block 13 (10x10, 1024 ch),
# four extra levels 512/256/256/128 down to 1x1).
#
# Init: from scratch. The paper starts from ImageNet-trained MobileNetV1
# backbones, but no ImageNet MobileNetV1 is published in an OpenMMLab key
# layout (mmdet/mmpretrain ship MobileNetV2, torchvision none), so there is
# no published init to keep. To start from ImageNet weights, train (or port)
# a MobileNetV1 classifier with this backbone's keys (stem.*, blocks.N.*),
# then set backbone init_cfg=dict(type='Pretrained', checkpoint=PATH); for
# the CondConv config convert it first (see that config).
_base_ = 'mmdet::ssd/ssd300_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

out_channels = (512, 1024, 512, 256, 256, 128)
model = dict(
    data_preprocessor=dict(std=[58.395, 57.12, 57.375]),
    backbone=dict(
        _delete_=True,
        type='MobileNetV1',
        out_indices=(10, 12),
        condconv_blocks=(),
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        init_cfg=None),  # no published init (see the header)
    neck=dict(
        in_channels=(512, 1024),
        out_channels=out_channels,
        level_strides=(2, 2, 2, 2),
        level_paddings=(1, 1, 1, 1),
        l2_norm_scale=None),
    bbox_head=dict(
        in_channels=out_channels,
        anchor_generator=dict(strides=[16, 30, 60, 100, 150, 300])))

# No silent partial loads: stop the run, naming the keys, if a pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
