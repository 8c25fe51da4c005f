# A short iteration-based schedule for CPU demos and end-to-end tests:
# AdamW (robust when training from scratch, no pretrained weights here),
# linear warm-up then cosine decay, one validation at the end.
max_iters = 300
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='CosineAnnealingLR',
        eta_min=2e-5,
        by_epoch=False,
        begin=30,
        end=max_iters)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
