# SSD300 on PASCAL VOC 07+12 with every conv larger than 1x1 a RefConv, as
# the RefConv paper does for a pretrained model: the VGG16 backbone (fc6
# included), the SSD neck's extra layers and the SSD head's classification
# and regression predictors. The stock config, its published init included
# (open-mmlab://vgg16_caffe: RefConv's frozen basis is the pretrained
# kernel, under the same `weight` key). The refocusing maps have the
# official init (zero_init_refocus=False: PyTorch's default conv init, as
# the official RepConv), the setting the paper reports best; True starts
# them at zero, so the model computes the stock one exactly at step 0.
#
# The swap happens at build time, before the weights are initialised or
# loaded. `python -m mmconvplug swap THIS_CONFIG` prints the report. After
# training, `tools/fold.py` writes a checkpoint for the stock config
# mmdet::pascal_voc/ssd300_voc0712.py.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    conv_swap=dict(type='RefConv', min_kernel_size=2, zero_init_refocus=False))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
