# Keypoint R-CNN with an SCNet-50 backbone (self-calibrated convolutions,
# Liu et al. 2020), from scratch (no pretrained download).
_base_ = './keypoint-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='SCResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=None))
