# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a DO-Conv.
# The stock config (mmdet's SSDVGG) with its backbone convs swapped by a
# backbone-level conv_swap: same state-dict keys, so after `tools/fold.py`
# the folded checkpoint loads into the stock config.
# Init: the stock config's open-mmlab://vgg16_caffe (conv1_1..conv5_3 and
# the reduced fc6/fc7 as features.0..33); DO-Conv keeps the plain kernel
# under `weight`, so it loads key for key and computes the pretrained VGG16
# exactly at step 0.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

# Every conv of the stock VGG16 backbone (conv1_1..conv5_3, fc6, fc7)
# becomes DOConv.from_conv(conv) when the backbone is built, before its init.
model = dict(backbone=dict(conv_swap=dict(type='DOConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_fit=dict(type='CheckpointFitHook', strict=True))
