# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a RefConv (frozen basis
# from the kernel + trainable refocusing), by a backbone-level conv_swap on
# mmdet's SSDVGG. For RefConv in the neck and head predictors as well, see
# ssd300_vgg16-refconv-all_8xb8-24e_voc0712.py.
# Init: the stock config's open-mmlab://vgg16_caffe: the pretrained kernels
# load into RefConv's basis (`weight`, the plain conv's key). The refocusing
# maps have the official init (zero_init_refocus=False: PyTorch's default
# conv init, as the official RepConv), the setting the paper reports best;
# True starts them at zero, so the backbone computes the pretrained VGG16
# exactly at step 0.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

# Every conv of the stock VGG16 backbone (conv1_1..conv5_3, fc6, fc7)
# becomes RefConv.from_conv(conv, zero_init_refocus=False) when the backbone
# is built, before its init.
model = dict(
    backbone=dict(conv_swap=dict(type='RefConv', zero_init_refocus=False)))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
