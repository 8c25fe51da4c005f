"""The conv_swap configs, built as the Runner builds them (no download).

For each config: the swap reaches exactly the plain convs its block asks
for (heads included) and reports every other one it reaches with a reason;
seeded, ``init_weights`` gives exactly the stock model's init; with the same
(perturbed, as trained) weights the swapped model computes the stock model's
``mode='tensor'`` outputs (float32, relative <= 1e-6); and the deploy config
of its fold is the stock config, into which the fold loads strictly. The
RefConv configs keep the official random refocusing map (the paper's best
setting): there "the stock model" has each swapped kernel refocused by the
official formula from that map, and differs from the plain stock model.
"""
import pytest
import torch
from swap_test_utils import (
    SWAP_CONFIGS,
    build,
    convs_under,
    load,
    model_dict,
    perturbed_,
    refocus_stock_kernels_officially,
    without_downloads,
)

from mmconvplug.analysis import output_difference
from mmconvplug.apis import make_deploy_config
from mmconvplug.convs.base import conv_variants, is_conv_variant
from mmconvplug.fold import fold_model
from mmconvplug.swap import conv_swap_reports, parse_conv_swap

#: Convs of the published heads that each config must swap (a sample that
#: names every head: RPN, RoI mask head, SSD predictors, ASPP, decoder).
HEAD_CONVS = {
    'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py': [
        'rpn_head.rpn_conv', 'roi_head.mask_head.convs.3.conv',
        'neck.fpn_convs.0.conv'
    ],
    'refconv/ssd300_vgg16-refconv-all_8xb8-24e_voc0712.py': [
        'backbone.features.31', 'neck.extra_layers.0.1.conv',
        'bbox_head.cls_convs.0.0', 'bbox_head.reg_convs.5.0'
    ],
    'refconv/deeplabv3plus_r50-d8-refconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    [
        'decode_head.aspp_modules.1.depthwise_conv.conv',
        'decode_head.sep_bottleneck.1.depthwise_conv.conv',
        'auxiliary_head.convs.0.conv'
    ],
    'doconv/deeplabv3plus_r50-d8-doconv-aspp_4xb2-80k_cityscapes-512x1024.py':  # noqa: E501
    [
        'decode_head.aspp_modules.3.depthwise_conv.conv',
        'decode_head.bottleneck.conv', 'backbone.layer4.2.conv2'
    ],
}


@pytest.mark.parametrize('config', sorted(SWAP_CONFIGS))
def test_swap_config_equals_the_stock_model(config):
    stock_name, shape = SWAP_CONFIGS[config]
    cfg, stock_cfg = load(config), load(stock_name)
    block = parse_conv_swap(cfg.model.conv_swap)

    # the swap config is the stock config plus the block
    model_cfg = model_dict(cfg)
    assert model_cfg.pop('conv_swap') is not None
    assert model_cfg == model_dict(stock_cfg)

    torch.manual_seed(0)
    stock = build(stock_cfg, without_downloads(stock_cfg.model))
    stock.init_weights()
    torch.manual_seed(0)
    swapped = build(cfg, without_downloads(cfg.model))
    swapped.init_weights()

    # exactly the convs the block selects became the variant
    (report, ) = conv_swap_reports(swapped)
    reached = convs_under(stock, block.include)
    expected = [name for name, conv in reached.items()
                if block.filter_reason(conv) is None]
    assert report.swapped_names == expected
    assert set(HEAD_CONVS[config]) <= set(expected)
    every_conv = convs_under(stock, block.include, plain_only=False)
    assert {s.name for s in report.skipped} == set(every_conv) - set(expected)
    for name in expected:
        assert type(swapped.get_submodule(name)).__name__ == block.variant
    assert not any(type(m) is torch.nn.Conv2d
                   for n, m in swapped.named_modules() if n in expected)

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    # The RefConv paper configs keep the official random map (the paper's
    # best setting): the stock init with each swapped kernel refocused by
    # the official formula, not the stock model itself. Decided by the
    # config's folder, not its block, so a RefConv config back at the zero
    # map fails here.
    random_map = config.startswith('refconv/')
    if random_map:
        assert block.variant == 'RefConv'
        assert block.variant_args.get('zero_init_refocus') is False
    if random_map:
        assert output_difference(stock, swapped, x).max_rel_error > 1e-2
        assert refocus_stock_kernels_officially(stock, swapped) > 0
    # seeded: the stock init, through the swap. float32: with the random
    # map the layers refocus through the fused CPU kernels, the official
    # formula through its own conv; the two sum in another order (1e-7 per
    # kernel entry, up to 2.6e-6 at the outputs of the 30-layer RefConv
    # SSD300).
    bound = 1e-5 if random_map else 1e-6
    init_error = output_difference(stock, swapped, x).max_rel_error
    assert init_error <= bound, init_error

    # same (trained-like) weights: same outputs
    perturbed_(stock)
    missing, unexpected = swapped.load_state_dict(stock.state_dict(),
                                                  strict=False)
    new_tensors = {
        f'{name}.{key}'
        for name, module in swapped.named_modules()
        if is_conv_variant(module) for key in module.new_tensor_names()
    }
    assert not unexpected and set(missing) <= new_tensors
    if random_map:  # the swapped model kept its map
        refocus_stock_kernels_officially(stock, swapped)
    difference = output_difference(stock, swapped, x)
    assert difference.max_rel_error <= bound, difference

    # the fold loads strictly into the deploy config = the stock config
    folded, fold_report = fold_model(swapped, return_report=True,
                                     plain_conv_only=True)
    deploy = make_deploy_config(cfg, fold_report, conv_variants())
    assert model_dict(deploy) == model_dict(stock_cfg)
    stock.load_state_dict(folded.state_dict(), strict=True)


def test_published_init_reaches_the_swapped_backbone_exactly(tmp_path):
    """The Mask R-CNN config keeps torchvision://resnet50; pointed at a
    local checkpoint in that layout (fc included), the swapped model
    initialises, with strict key checks, to exactly the stock model."""
    from mmdet.models.backbones import ResNet

    config = 'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py'
    stock_name, shape = SWAP_CONFIGS[config]
    state = ResNet(50).state_dict()  # torchvision's ResNet-50 key layout
    state['fc.weight'], state['fc.bias'] = torch.zeros(1000, 2048), \
        torch.zeros(1000)
    path = str(tmp_path / 'resnet50.pth')
    torch.save(state, path)

    models = []
    for name in (stock_name, config):
        cfg = load(name)
        assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://'\
            'resnet50'
        model_cfg = without_downloads(cfg.model)
        model_cfg['backbone']['init_cfg'] = dict(type='Pretrained',
                                                 checkpoint=path,
                                                 strict=True)
        torch.manual_seed(0)
        model = build(cfg, model_cfg)
        model.init_weights()
        models.append(model)
    stock, swapped = models
    conv2 = swapped.backbone.layer3[0].conv2
    assert type(conv2).__name__ == 'DOConv'
    assert torch.equal(conv2.weight, state['layer3.0.conv2.weight'])
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    assert output_difference(stock, swapped, x).max_rel_error <= 1e-6
