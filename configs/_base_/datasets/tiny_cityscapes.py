# Tiny Cityscapes (tools/make_tiny_datasets.py --which cityscapes): the stock
# Cityscapes settings (19 train ids, IoUMetric mIoU) at a small scale. For
# real Cityscapes change data_root, img_scale and crop_size.
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

data_root = 'data/tiny/cityscapes/'
img_scale = (128, 64)  # (w, h) of the generated images
crop_size = (64, 128)  # (h, w), as mmseg writes it

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
