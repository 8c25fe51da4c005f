# The small CPU Keypoint R-CNN (ResNet-18 from scratch, 128 px) on the tiny
# CrowdPose-layout set: 14 keypoints, files with CrowdPose's quirks (no
# `area`, CrowdPose's own `num_keypoints`), written by
# python tools/make_tiny_datasets.py --which crowdpose (or
# mmconvplug.datagen.make_tiny_crowdpose). Same model and schedule as
# keypoint-rcnn_r18_fpn_tiny_coco.py, with CrowdPoseKeypointDataset and 14
# heatmaps; the same config reads the real CrowdPose by changing data_root.
_base_ = './keypoint-rcnn_r18_fpn_tiny_coco.py'

dataset_type = 'CrowdPoseKeypointDataset'
data_root = 'data/tiny/crowdpose/'

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
