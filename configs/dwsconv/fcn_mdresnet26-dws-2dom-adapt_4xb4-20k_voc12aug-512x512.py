# Multi-domain example, step 2 of 2: adapt the Cityscapes-trained
# multi-domain ResNet-26 (step 1) to PASCAL VOC 2012 aug as domain 1 by
# training only domain 1's depthwise kernels and BNs (and the new heads);
# every shared pointwise conv stays frozen (train_domain_only=True), so
# domain 0 keeps its accuracy and the new domain costs only the per-domain
# parameters logged at build time. DDP wraps the model with only those (and
# the heads) trainable, so its default flags work. The backbone is the
# paper's network, arch='official' (the default), as in step 1; see step 1's
# header for arch='rebuffi', the earlier default.
# Init: the step-1 checkpoint (load_from below), not an ImageNet release.
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
custom_imports = dict(imports=['mmconvplug'], allow_failed_imports=False)

num_domains = 2
model = dict(
    pretrained=None,  # the weights come from step 1 (load_from below)
    backbone=dict(
        _delete_=True,
        type='MultiDomainResNet26',
        arch='official',  # as step 1: its checkpoint loads only into it
        num_domains=num_domains,
        active_domain=1,
        train_domain_only=True,
        stem_stride=2,
        strides=(1, 2, 2),
        out_indices=(0, 1, 2),
        norm_eval=False),
    decode_head=dict(in_channels=512, in_index=2, channels=512),
    auxiliary_head=dict(in_channels=256, in_index=1, channels=256))

# The step-1 checkpoint (e.g. work_dirs/fcn_mdresnet26-dws-2dom_4xb2-40k_
# cityscapes-512x1024/iter_40000.pth). Its 19-class classifiers do not fit
# the 21 VOC classes and are skipped (mmengine loads non-strictly), all the
# rest, both domains' backbone parameters included, is restored.
load_from = None
