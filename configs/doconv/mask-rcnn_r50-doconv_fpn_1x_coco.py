# Mask R-CNN R50-FPN 1x on COCO with every ResNet-50 conv a DO-Conv.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        conv_cfg=dict(type='DOConv'),
        # The stock config downloads torchvision://resnet50; here nothing is
        # downloaded. For ImageNet weights: tools/convert_pretrained.py
        # resnet50.pth r50_doconv.pth --variant doconv --config THIS_CONFIG,
        # then init_cfg=dict(type='Pretrained', checkpoint='r50_doconv.pth').
        init_cfg=None))
