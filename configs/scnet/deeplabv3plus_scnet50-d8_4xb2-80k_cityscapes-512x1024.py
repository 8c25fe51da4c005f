# DeepLabv3+ SCNet-50-v1d-D8 on Cityscapes 512x1024: the stock
# DeepLabv3+ R50-D8 (ResNetV1c: deep 3x3 stem; output stride 8 by dilation
# 2/4 in the last two stages, contract_dilation) with the SCNet-50 v1d
# backbone (deep 3x3 stem, avg-down projections, avd blocks), the SCNet
# release with a deep stem. Not in the SCNet paper: our extension of its
# backbone comparison to segmentation.
# Init: the official SCNet-50 v1d ImageNet release (`scnet50_v1d` of the
# official code's model_urls), loaded key for key (its `fc` classifier
# aside); as in the official code's dilated mode, the dilated stages keep
# their avd pooling and avg-down projection at stride 1.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained='https://backseason.oss-cn-beijing.aliyuncs.com/scnet/'
    'scnet50_v1d-4109d1e1.pth',
    backbone=dict(
        _delete_=True,
        type='SCResNetV1d',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
