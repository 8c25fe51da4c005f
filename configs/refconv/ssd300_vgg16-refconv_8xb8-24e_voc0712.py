# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a RefConv (frozen basis
# from the kernel + trainable refocusing), backbone SSDVGGConvCfg.
# Init: the stock config's open-mmlab://vgg16_caffe: the pretrained kernels
# load into RefConv's basis (`weight`, the plain conv's key) and the
# refocusing map starts at zero, so the backbone computes the pretrained
# VGG16 exactly at step 0.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='SSDVGGConvCfg', conv_cfg=dict(type='RefConv')))

# No silent partial loads: stop the run, naming the keys, if the pretrained
# init (or a load_from) leaves model tensors unfilled (other than the conv
# variants' own new tensors) or checkpoint tensors unused (other than the
# ImageNet classifier).
default_hooks = dict(
    checkpoint_keys=dict(type='CheckpointKeysHook', strict=True))
