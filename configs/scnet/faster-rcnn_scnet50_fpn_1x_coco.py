# Faster R-CNN SCNet-50-FPN 1x on COCO (the SCNet paper's detection
# comparison with ResNet-50).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SCResNet',
        # From scratch; see mask-rcnn_scnet50_fpn_1x_coco.py for weights.
        init_cfg=None))
