# Mask + Keypoint R-CNN R-50-FPN, 1x schedule, COCO persons: the keypoint
# config plus mmdet's Mask R-CNN mask branch (RoIAlign 14x14 -> 4 x
# conv3x3(256) -> deconv -> 28x28 masks, per-pixel sigmoid loss), the two
# branches trained together on the persons of person_keypoints_*.json
# (which carry their polygons), as He et al. 2017 (Table 4) and
# detectron2 #1784 do. Predictions carry `masks`, `keypoints` (N, 17, 2) and
# `keypoint_scores` (N, 17); the metric reports bbox, segm and keypoints AP.
# Init: the keypoint config's torchvision://resnet50 (ImageNet).
_base_ = './keypoint-rcnn_r50_fpn_1x_coco.py'

model = dict(
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            num_classes=1,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadKeypointAnnotations', with_bbox=True, with_mask=True),
    dict(type='KeypointResize', scale=(1333, 800), keep_ratio=True),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

val_evaluator = dict(metric=['bbox', 'segm', 'keypoints'])
test_evaluator = val_evaluator
