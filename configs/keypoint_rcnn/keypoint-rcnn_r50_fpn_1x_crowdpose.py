# Keypoint R-CNN R-50-FPN, 1x schedule, CrowdPose (Li et al. CVPR 2019):
# 14 keypoints (COCO's 12 body joints, top of head, neck).
#
# The COCO config with CrowdPoseKeypointDataset, whose metainfo holds the
# names, flip pairs and the official toolkit's OKS sigmas
# (mmconvplug/keypoint/crowdpose_meta.py), and 14 heatmaps. The published
# json files load as they are: no `area` (filled from the box by mmpose's
# rule, max(1, 0.53 * w * h), in the dataset and the metric alike) and
# CrowdPose's own `num_keypoints` (body joints only), followed as
# pycocotools does. Metric: box AP + COCO-style OKS AP with CrowdPose's
# sigmas (all / medium / large; the official easy / medium / hard split of
# crowdposetools is not computed).
# Data: data/crowdpose/images/, data/crowdpose/annotations/
# crowdpose_{trainval,test}.json (github.com/Jeff-sjtu/CrowdPose).
# Init: the COCO config's torchvision://resnet50 (ImageNet).
_base_ = './keypoint-rcnn_r50_fpn_1x_coco.py'

dataset_type = 'CrowdPoseKeypointDataset'
data_root = 'data/crowdpose/'

model = dict(roi_head=dict(keypoint_head=dict(num_keypoints=14)))

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/crowdpose_trainval.json',
        data_prefix=dict(img='images/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/crowdpose_test.json',
        data_prefix=dict(img='images/')))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'annotations/crowdpose_test.json')
test_evaluator = val_evaluator
