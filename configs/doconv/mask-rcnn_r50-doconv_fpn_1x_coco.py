# Mask R-CNN R50-FPN 1x on COCO with every ResNet-50 conv a DO-Conv.
# Init: the stock config's torchvision://resnet50. DO-Conv stores the plain
# kernel under `weight` (D starts at the identity), so the torchvision
# checkpoint loads key for key and the backbone computes the pretrained
# ResNet-50 exactly at step 0; only DO-Conv's own D_delta starts new.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(backbone=dict(conv_cfg=dict(type='DOConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
