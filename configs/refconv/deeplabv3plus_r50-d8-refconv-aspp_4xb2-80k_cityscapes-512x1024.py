# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every conv larger than 1x1
# a RefConv, as the RefConv paper's segmentation transfer: the ResNetV1c
# backbone, the dilated depthwise ASPP branches, the separable bottleneck
# and decoder convs, and the auxiliary FCN head. The stock config, its
# published init included (open-mmlab://resnet50_v1c: RefConv's frozen basis
# is the pretrained kernel, under the same `weight` key). The refocusing
# maps have the official init (zero_init_refocus=False: PyTorch's default
# conv init, as the official RepConv), the setting the paper reports best;
# True starts them at zero, so the model computes the stock one exactly at
# step 0.
#
# The swap happens at build time, before the weights are initialised or
# loaded. `python -m mmconvplug swap THIS_CONFIG` prints the report:
# 26 convs, parameters 43.6M -> 162.0M. The official RefConv map of a
# depthwise conv mixes all its kernels (map_groups G = 1), so each of the
# three 2048-channel ASPP branches trains a 37.7M-parameter map (the fold
# removes them all). To bound it, swap the depthwise convs in a second
# block with e.g. map_groups=8 (it must divide their channel counts):
#   conv_swap=[dict(type='RefConv', min_kernel_size=2, groups=1,
#                   zero_init_refocus=False),
#              dict(type='RefConv', min_kernel_size=2, map_groups=8,
#                   zero_init_refocus=False)]
# After training, `tools/fold.py` writes a checkpoint for the stock config.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    conv_swap=dict(type='RefConv', min_kernel_size=2, zero_init_refocus=False))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
