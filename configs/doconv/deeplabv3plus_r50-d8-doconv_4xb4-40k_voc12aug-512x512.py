# DeepLabv3+ R50-D8 on PASCAL VOC 2012 + SBD aug, 512x512, with every
# ResNet-50 conv a DO-Conv.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    # No download (stock: open-mmlab://resnet50_v1c); see the Cityscapes
    # DO-Conv config for starting from converted ImageNet weights.
    pretrained=None,
    backbone=dict(conv_cfg=dict(type='DOConv'), init_cfg=None))
