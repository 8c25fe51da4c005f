# Keypoint R-CNN with an SCNet-50 backbone (self-calibrated convolutions,
# Liu et al. 2020). Init: the official SCNet-50 ImageNet release (`scnet50`
# of the official code's model_urls), loaded key for key (`fc` aside).
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
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://backseason.oss-cn-beijing.aliyuncs.com/'
            'scnet/scnet50-dc6a7e87.pth')))
