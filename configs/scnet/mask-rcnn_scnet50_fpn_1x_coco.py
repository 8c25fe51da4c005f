# Mask R-CNN SCNet-50-FPN 1x on COCO (the SCNet paper's instance
# segmentation comparison with ResNet-50: the stock
# mask-rcnn_r50_fpn_1x_coco with the backbone swapped). Init: the official
# SCNet-50 ImageNet release (`scnet50` of the official model_urls), loaded
# key for key (its `fc` classifier aside).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SCResNet',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://backseason.oss-cn-beijing.aliyuncs.com/'
            'scnet/scnet50-dc6a7e87.pth')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
