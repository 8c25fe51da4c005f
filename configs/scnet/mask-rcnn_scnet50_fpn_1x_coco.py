# Mask R-CNN SCNet-50-FPN 1x on COCO (the SCNet paper's instance
# segmentation comparison with ResNet-50).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SCResNet',
        # From scratch, nothing downloaded (the stock config downloads
        # torchvision://resnet50). For ImageNet SCNet-50 weights set
        # init_cfg=dict(type='Pretrained', checkpoint='scnet50.pth'): the
        # official checkpoint's block keys match SCResNet's.
        init_cfg=None))
