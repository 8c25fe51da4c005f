# SSD300 on PASCAL VOC 07+12 with every VGG16 conv a DO-Conv.
# The stock config, with the backbone swapped for SSDVGGConvCfg (mmdet's
# SSDVGG honouring conv_cfg; same state-dict keys, so after
# `tools/fold.py` the folded checkpoint loads into the stock SSDVGG).
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SSDVGGConvCfg',
        conv_cfg=dict(type='DOConv'),
        # Trained from scratch by default (nothing is downloaded). To start
        # from ImageNet VGG16: `tools/convert_pretrained.py vgg16.pth
        # vgg16_doconv.pth --variant doconv --config THIS_CONFIG`, then
        # init_cfg=dict(type='Pretrained', checkpoint='vgg16_doconv.pth').
        init_cfg=None))
