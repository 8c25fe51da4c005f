# A small Mask + Keypoint R-CNN for CPU runs and end-to-end tests: the tiny
# Keypoint R-CNN (ResNet-18 from scratch, 64-channel FPN, 128 px) plus a
# 2 x conv3x3(64) mask branch, on the tiny COCO keypoint set (its persons
# carry polygons). Predicts masks, keypoints and keypoint scores; the
# metric reports bbox, segm and keypoints AP. The R-50 version is
# mask-keypoint-rcnn_r50_fpn_1x_coco.py.
_base_ = './keypoint-rcnn_r18_fpn_tiny_coco.py'

img_scale = (128, 128)

model = dict(
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=64,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=2,
            in_channels=64,
            conv_out_channels=64,
            num_classes=1,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadKeypointAnnotations', with_bbox=True, with_mask=True),
    dict(type='KeypointResize', scale=img_scale, keep_ratio=True),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

val_evaluator = dict(metric=['bbox', 'segm', 'keypoints'])
test_evaluator = val_evaluator
