# DeepLabv3+ R50-D8 on PASCAL VOC 2012 + SBD aug, 512x512, with every
# ResNet-50 conv a DO-Conv. Init: the stock open-mmlab://resnet50_v1c
# (see the Cityscapes DO-Conv config).
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(backbone=dict(conv_cfg=dict(type='DOConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
