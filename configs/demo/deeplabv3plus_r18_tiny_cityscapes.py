# A small DeepLabv3+ for CPU runs: the stock mmseg DeepLabv3+ (ResNetV1c-18,
# depthwise-separable ASPP, FCN auxiliary head) trained from scratch (no
# download), plain BN instead of SyncBN, on 64x128 crops of the tiny
# Cityscapes set. Swap the backbone convs with
#   --cfg-options model.backbone.conv_cfg.type=DOConv
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/tiny_cityscapes.py', '../_base_/schedules/cpu_demo.py',
    'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

crop_size = (64, 128)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=64,
        dilations=(1, 2, 3, 4),  # ASPP rates for an 8x16 feature map
        c1_in_channels=64,
        c1_channels=12,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=32, norm_cfg=norm_cfg))

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100000,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook', draw=False))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(cudnn_benchmark=False)
