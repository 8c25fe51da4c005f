"""Head predictors are swapped when asked; `python -m mmconvplug swap`."""
import copy

from swap_test_utils import REPO, build, load

from mmconvplug.cli import main
from mmconvplug.swap import build_hook_installed, conv_swap_reports

MASK_RCNN = 'demo/mask_rcnn_r18_tiny_coco.py'
SSD = 'demo/ssd_r18_tiny_voc.py'
DETSTAGE = 'configs/doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py'


def _types(model, prefix):
    return {name: type(m).__name__ for name, m in model.named_modules()
            if name.startswith(prefix) and 'Conv' in type(m).__name__}


def test_rpn_predictors_are_swapped_when_asked():
    cfg = load(MASK_RCNN)
    cfg.model.conv_swap = dict(type='DOConv', include=['rpn_head'])
    model = build(cfg)
    assert _types(model, 'rpn_head.') == {
        'rpn_head.rpn_conv': 'DOConv',
        'rpn_head.rpn_cls': 'DOConv',
        'rpn_head.rpn_reg': 'DOConv'
    }
    assert conv_swap_reports(model)[0].swapped_names == [
        'rpn_head.rpn_conv', 'rpn_head.rpn_cls', 'rpn_head.rpn_reg']


def test_ssd_predictors_are_swapped_when_asked():
    cfg = load(SSD)
    cfg.model.conv_swap = dict(
        type='RefConv', include=['bbox_head.cls_convs', 'bbox_head.reg_convs'])
    model = build(cfg)
    names = conv_swap_reports(model)[0].swapped_names
    assert names == [f'bbox_head.{kind}_convs.{i}.0'
                     for kind in ('cls', 'reg') for i in range(5)]
    assert set(_types(model, 'bbox_head.').values()) == {'RefConv'}
    assert 'RefConv' not in _types(model, 'backbone.').values()


def test_a_conv_swap_in_a_sub_config_swaps_that_module():
    """mmdet builds the heads through its own MODELS registry (a child of
    mmengine's): the hook reaches it too."""
    assert build_hook_installed()
    cfg = load(MASK_RCNN)
    cfg.model.rpn_head.conv_swap = dict(type='CondConv', num_experts=2)
    model = build(cfg)
    assert set(_types(model, 'rpn_head.').values()) == {'CondConv'}
    assert 'CondConv' not in _types(model, 'roi_head.').values()
    (report, ) = conv_swap_reports(model)
    assert report.model == 'RPNHead'


def test_the_model_config_is_left_as_it_was():
    cfg = load(SSD)
    cfg.model.conv_swap = dict(type='DOConv', include='neck')
    before = copy.deepcopy(cfg.model.to_dict())
    build(cfg)
    assert cfg.model.to_dict() == before


def test_cli_prints_the_report(capsys):
    rc = main(['swap', f'{REPO}/{DETSTAGE}'])
    out = capsys.readouterr().out
    assert rc == 0
    assert 'DOConv' in out and 'params before' in out
    for name in ('rpn_head.rpn_conv', 'roi_head.mask_head.convs.0.conv',
                 'neck.fpn_convs.3.conv', 'backbone.layer1.0.conv2'):
        assert name in out
    # skipped, with the reason
    assert 'rpn_head.rpn_cls' in out and 'min_kernel_size=2' in out
    assert 'roi_head.mask_head.upsample' in out and 'not a plain' in out


def test_cli_names_the_closest_modules_of_a_bad_pattern(capsys):
    rc = main(['swap', f'{REPO}/configs/{MASK_RCNN}', '--cfg-options',
               'model.conv_swap.type=DOConv',
               'model.conv_swap.include=[rpn_heads,backbone]'])
    err = capsys.readouterr().err
    assert rc == 2
    assert "'rpn_heads' matches no module" in err and "'rpn_head'" in err


def test_cli_lists_the_convs_of_a_config_without_a_swap(capsys):
    rc = main(['swap', f'{REPO}/configs/{SSD}', '--list', 'bbox_head'])
    out = capsys.readouterr().out
    assert rc == 0
    assert 'bbox_head.cls_convs.0.0' in out and 'backbone' not in out


def test_cli_without_a_swap_says_how_to_add_one(capsys):
    assert main(['swap', f'{REPO}/configs/{SSD}']) == 2
    assert 'no conv_swap block' in capsys.readouterr().err


def test_dict_configdict_and_config_objects_all_swap():
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope('mmdet')
    cfg = dict(type='RPNHead', in_channels=8, feat_channels=8,
               anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                     ratios=[1.0], strides=[4]),
               conv_swap=dict(type='DOConv', min_kernel_size=2))
    for each in (cfg, ConfigDict(cfg), Config(cfg)):
        head = MODELS.build(each)
        assert type(head.rpn_conv).__name__ == 'DOConv'
        assert type(head.rpn_cls).__name__ == 'Conv2d'  # 1x1: filtered
        assert 'conv_swap' in each  # the caller's config is not changed


def test_info_says_where_conv_swap_is_honoured():
    import mmseg.registry  # noqa: F401  (created after the hook: inherits)

    from mmconvplug.cli.info import info_lines
    (line, ) = [x for x in info_lines()
                if x.startswith('upstream') and 'conv_swap_build_hook' in x]
    assert 'mmdet' in line and 'mmengine' in line and 'mmseg' in line
