# DeepLabv3+ SCNet-50-D8 on Cityscapes 512x1024: the stock ResNetV1c-50
# (deep stem, output stride 8 by dilation 2/4 in the last two stages,
# contract_dilation) with SCNet bottlenecks.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # The stock config downloads open-mmlab://resnet50_v1c; nothing here.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='SCResNet',
        depth=50,
        deep_stem=True,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=None))
