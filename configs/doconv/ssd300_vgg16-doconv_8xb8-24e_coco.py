# SSD300 on COCO with every VGG16 conv a DO-Conv (see the VOC config).
_base_ = 'mmdet::ssd/ssd300_coco.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SSDVGGConvCfg',
        conv_cfg=dict(type='DOConv'),
        # From scratch; for ImageNet weights convert a plain VGG16 with
        # tools/convert_pretrained.py --variant doconv and point a
        # dict(type='Pretrained', checkpoint=PATH) here.
        init_cfg=None))
