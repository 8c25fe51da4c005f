# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every ResNet-50 conv a
# DO-Conv. Init: the stock config's pretrained='open-mmlab://resnet50_v1c'
# (mmseg's ResNetV1c layout), loaded key for key into the DO-Conv
# ResNetV1c: the backbone computes the pretrained network at step 0.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(backbone=dict(conv_cfg=dict(type='DOConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
