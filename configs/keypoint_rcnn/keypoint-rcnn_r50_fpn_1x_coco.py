# Keypoint R-CNN R-50-FPN, 1x schedule, COCO person keypoints.
#
# Faster R-CNN (mmdet's stock config) with one class (person) and the
# keypoint branch of He et al. 2017 / detectron2: RoIAlign 14x14 ->
# 8 x conv3x3(512) -> deconv + bilinear x2 -> 17 heatmaps of 56x56, spatial
# softmax cross-entropy on positive RoIs. Metric: box AP + keypoint OKS AP.
# Init: the stock config's torchvision://resnet50 (ImageNet), as in He et
# al. and detectron2.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    type='KeypointRCNN',
    roi_head=dict(
        type='KeypointRoIHead',
        bbox_head=dict(num_classes=1),
        keypoint_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        keypoint_head=dict(
            type='KeypointHeatmapHead',
            num_keypoints=17,
            in_channels=256,
            num_convs=8,
            conv_out_channels=512,
            roi_feat_size=14,
            loss_keypoint=dict(type='KeypointHeatmapLoss', loss_weight=1.0))))

dataset_type = 'CocoKeypointDataset'
data_root = 'data/coco/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='KeypointResize', scale=(1333, 800), keep_ratio=True),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='KeypointResize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(
        type='PackKeypointDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        # detectron2 drops training images with no visible keypoint.
        filter_cfg=dict(
            filter_empty_gt=True, min_size=32, min_keypoints_per_image=1),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoKeypointMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    metric=['bbox', 'keypoints'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))

visualizer = dict(
    type='KeypointDetLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
