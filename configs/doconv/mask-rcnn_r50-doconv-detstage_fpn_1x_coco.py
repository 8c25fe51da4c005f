# Mask R-CNN R50-FPN 1x on COCO with DO-Conv in the backbone *and the
# detection stage* (FPN, RPN head, RoI heads), as in the DO-Conv paper's
# COCO experiments. The stock config, its published init included
# (torchvision://resnet50: DO-Conv keeps the plain kernel under `weight`,
# so the pretrained backbone loads and is computed exactly at step 0).
#
# The swap happens at build time, before the weights are initialised or
# loaded: every plain conv with a kernel larger than 1x1 under the listed
# modules becomes DOConv.from_conv(conv) (1x1 kernels have nothing to
# over-parameterise). `python -m mmconvplug swap THIS_CONFIG` prints the
# report. After training, `tools/fold.py` writes a checkpoint for the stock
# config mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    conv_swap=dict(
        type='DOConv',
        include=['backbone', 'neck', 'rpn_head', 'roi_head'],
        min_kernel_size=2))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
