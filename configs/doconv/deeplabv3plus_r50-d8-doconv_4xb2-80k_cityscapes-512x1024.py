# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every ResNet-50 conv a
# DO-Conv.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    # The stock config downloads open-mmlab://resnet50_v1c; nothing is
    # downloaded here. For ImageNet weights convert a plain ResNetV1c with
    # tools/convert_pretrained.py --variant doconv --config THIS_CONFIG and
    # set backbone init_cfg=dict(type='Pretrained', checkpoint=PATH).
    pretrained=None,
    backbone=dict(conv_cfg=dict(type='DOConv'), init_cfg=None))
