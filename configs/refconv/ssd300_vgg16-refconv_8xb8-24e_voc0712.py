# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a RefConv (frozen basis
# from the kernel + trainable refocusing), backbone SSDVGGConvCfg.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SSDVGGConvCfg',
        conv_cfg=dict(type='RefConv'),
        # RefConv refocuses a *pretrained* basis: convert an ImageNet VGG16
        # with tools/convert_pretrained.py --variant refconv --config
        # THIS_CONFIG and set init_cfg=dict(type='Pretrained',
        # checkpoint=PATH). Default: from scratch, nothing downloaded.
        init_cfg=None))
