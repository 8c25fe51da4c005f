# Keypoint R-CNN R-50-FPN, 1x schedule, AI Challenger human keypoints (Wu
# et al. 2017): 14 keypoints, right side first, head top and neck.
#
# The COCO config with AicKeypointDataset, whose metainfo holds the names,
# flip pairs and OKS sigmas of mmpose's aic.py (half the official
# keypoint_eval.py delta; mmconvplug/keypoint/aic_meta.py), and 14
# heatmaps. Data: the COCO-layout files mmpose converts AIC to
# (annotations/aic_{train,val}.json, no `area`: filled from the box by
# mmpose's rule, max(1, 0.53 * w * h), in the dataset and the metric) and
# the official image folders. Metric: box AP + COCO-style OKS AP (not the
# official AIC evaluation script).
# Init: the COCO config's torchvision://resnet50 (ImageNet).
_base_ = './keypoint-rcnn_r50_fpn_1x_coco.py'

dataset_type = 'AicKeypointDataset'
data_root = 'data/aic/'

model = dict(roi_head=dict(keypoint_head=dict(num_keypoints=14)))

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/aic_train.json',
        data_prefix=dict(img='ai_challenger_keypoint_train_20170902/'
                         'keypoint_train_images_20170902/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/aic_val.json',
        data_prefix=dict(img='ai_challenger_keypoint_validation_20170911/'
                         'keypoint_validation_images_20170911/')))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'annotations/aic_val.json')
test_evaluator = val_evaluator
