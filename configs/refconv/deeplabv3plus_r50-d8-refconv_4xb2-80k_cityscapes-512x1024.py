# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every ResNet-50 conv a
# RefConv.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    # No download. RefConv's basis should come from a pretrained kernel:
    # tools/convert_pretrained.py r50_v1c.pth r50_refconv.pth --variant
    # refconv --config THIS_CONFIG, then backbone init_cfg=dict(
    # type='Pretrained', checkpoint='r50_refconv.pth').
    pretrained=None,
    backbone=dict(conv_cfg=dict(type='RefConv'), init_cfg=None))
