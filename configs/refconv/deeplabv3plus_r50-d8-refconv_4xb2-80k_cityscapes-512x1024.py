# DeepLabv3+ R50-D8 on Cityscapes 512x1024 with every ResNet-50 conv a
# RefConv. Init: the stock config's pretrained='open-mmlab://resnet50_v1c'.
# RefConv refocuses a pretrained basis: its frozen basis is the buffer
# `weight`, under the plain conv's key, so the checkpoint's kernels become
# the basis. The refocusing map has the official init (PyTorch's default
# conv init, as the official RepConv; zero_init_refocus=False), the setting
# the paper reports best, so at step 0 the backbone is the pretrained basis
# refocused by a random map. For step-0 equality with the pretrained network
# instead (the paper's zero-init ablation), set zero_init_refocus=True.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(conv_cfg=dict(type='RefConv', zero_init_refocus=False)))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
