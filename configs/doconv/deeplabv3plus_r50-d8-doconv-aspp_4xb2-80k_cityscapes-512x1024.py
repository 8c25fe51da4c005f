# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every conv larger than 1x1
# a DO-Conv: the ResNetV1c backbone, the dilated depthwise ASPP branches
# (DO-DConv), the separable bottleneck and decoder convs, and the auxiliary
# FCN head. 1x1 kernels have nothing to over-parameterise. The stock
# config, its published init included (open-mmlab://resnet50_v1c).
#
# The swap happens at build time, before the weights are initialised or
# loaded. `python -m mmconvplug swap THIS_CONFIG` prints the report. After
# training, `tools/fold.py` writes a checkpoint for the stock config.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(conv_swap=dict(type='DOConv', min_kernel_size=2))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
