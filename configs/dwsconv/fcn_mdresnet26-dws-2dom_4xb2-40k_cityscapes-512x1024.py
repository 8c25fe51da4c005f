# Multi-domain example, step 1 of 2: train the multi-domain ResNet-26 of
# Guo et al. (AAAI 2019) on the first domain (Cityscapes, domain 0).
# The backbone is arch='official', the paper's network (the default): every
# conv a DWSConv, a per-domain depthwise kernel followed directly by the
# shared pointwise conv, every norm a DomainBN (one BN per domain), stages
# of 128 / 256 / 512 channels and a final per-domain BN + ReLU; 2,580,672
# shared and 75,995 parameters per domain, the paper's counts. (The earlier
# default, arch='rebuffi', has half the widths and a BN inside each DWSConv;
# its checkpoints load only into arch='rebuffi' with decode_head
# in_channels=256 and auxiliary_head in_channels=128.) The
# model is built for 2 domains from the start, so step 2
# (fcn_mdresnet26-dws-2dom-adapt_4xb4-20k_voc12aug-512x512.py) only adds
# training of domain 1's own parameters; the per-domain parameter overhead
# is logged when the backbone is built. DDP needs no find_unused_parameters:
# domain 1's depthwise kernels and BNs are frozen while domain 0 is active.
# Init: from scratch; no ImageNet release of the multi-domain ResNet-26
# exists (the stock open-mmlab://resnet50_v1c is another network).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

num_domains = 2
model = dict(
    pretrained=None,  # no published init (see the header)
    backbone=dict(
        _delete_=True,
        type='MultiDomainResNet26',
        arch='official',  # the paper's network (see the header)
        num_domains=num_domains,
        active_domain=0,
        stem_stride=2,
        strides=(1, 2, 2),  # output stride 8, as the stock -D8 models
        out_indices=(0, 1, 2),
        norm_eval=False),
    # the official widths: stage 2 (after the final BN + ReLU) has 512
    # channels, stage 1 has 256
    decode_head=dict(in_channels=512, in_index=2, channels=512),
    auxiliary_head=dict(in_channels=256, in_index=1, channels=256))
