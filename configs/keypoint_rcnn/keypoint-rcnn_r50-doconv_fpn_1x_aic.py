# Keypoint R-CNN R-50-FPN on AIC (14 keypoints) with DO-Conv (Cao et al.
# 2020) in the backbone and the keypoint head's conv stack. Train as is;
# FoldHook / tools/fold.py fold every DOConv into a plain conv, so the
# folded checkpoint loads into keypoint-rcnn_r50_fpn_1x_aic.py.
# Init: torchvision://resnet50, which DO-Conv loads key for key.
_base_ = './keypoint-rcnn_r50_fpn_1x_aic.py'

model = dict(
    backbone=dict(conv_cfg=dict(type='DOConv')),
    roi_head=dict(keypoint_head=dict(conv_cfg=dict(type='DOConv'))))
