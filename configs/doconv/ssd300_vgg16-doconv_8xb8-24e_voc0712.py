# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a DO-Conv.
# The stock config, with the backbone swapped for SSDVGGConvCfg (mmdet's
# SSDVGG honouring conv_cfg; same state-dict keys, so after
# `tools/fold.py` the folded checkpoint loads into the stock SSDVGG).
# Init: the stock config's open-mmlab://vgg16_caffe (conv1_1..conv5_3 and
# the reduced fc6/fc7 as features.0..33); DO-Conv keeps the plain kernel
# under `weight`, so it loads key for key and computes the pretrained VGG16
# exactly at step 0.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='SSDVGGConvCfg', conv_cfg=dict(type='DOConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_keys=dict(type='CheckpointKeysHook', strict=True))
