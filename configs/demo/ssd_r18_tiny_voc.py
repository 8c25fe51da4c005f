# A small SSD for CPU demos: the stock mmdet SSD detector, SSDNeck and SSDHead
# on a narrow ResNet-18 (base width 32, trained from scratch: no pretrained
# weights are downloaded) at 128x128, on the tiny VOC set.
#
# Swap the backbone's convolutions with one override, e.g.
#   --cfg-options model.backbone.conv_cfg.type=DOConv
# (ResNet builds every conv, stem and shortcuts included, with conv_cfg).
_base_ = [
    'mmdet::_base_/models/ssd300.py', '../_base_/datasets/tiny_voc.py',
    '../_base_/schedules/cpu_demo.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

input_size = 128
base_width = 32
widths = (base_width * 2, base_width * 4, base_width * 8)  # C3, C4, C5
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=base_width,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        in_channels=widths,
        out_channels=widths + (128, 128),
        level_strides=(2, 2),
        level_paddings=(1, 1),
        l2_norm_scale=None,
        norm_cfg=dict(type='BN')),
    bbox_head=dict(
        in_channels=widths + (128, 128),
        num_classes=20,  # VOCDataset always has the 20 VOC classes
        anchor_generator=dict(
            input_size=input_size,
            strides=[8, 16, 32, 64, 128],
            ratios=[[2], [2, 3], [2, 3], [2], [2]],
            basesize_ratio_range=(0.15, 0.9),
            min_sizes=[16, 32, 56, 80, 104],
            max_sizes=[32, 56, 80, 104, 128])),
    test_cfg=dict(score_thr=0.02, max_per_img=100))

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = val_dataloader

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100000,
                    save_last=True),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='CheckInvalidLossHook', interval=50)]
