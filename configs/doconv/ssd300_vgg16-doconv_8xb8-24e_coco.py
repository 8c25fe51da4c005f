# SSD300 on COCO with every VGG16 conv a DO-Conv (see the VOC config).
# Init: the stock config's open-mmlab://vgg16_caffe, loaded key for key.
_base_ = 'mmdet::ssd/ssd300_coco.py'
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
