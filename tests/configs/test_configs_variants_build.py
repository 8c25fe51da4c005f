"""Every config in configs/{doconv,refconv,condconv,scnet,dwsconv} builds
through the real mmdet/mmseg registries, computes its training losses and
predicts on a tiny batch, and (where its convs fold) ``fold_model`` keeps
the features. The input is small (SSD needs its 300x300); nothing is
downloaded: the configs' published init is dropped here (from scratch).
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import PixelData

from mmconvplug import fold_model

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANT_DIRS = ('doconv', 'refconv', 'condconv', 'scnet', 'dwsconv')
CONFIGS = sorted(
    osp.relpath(path, osp.join(REPO, 'configs'))
    for folder in VARIANT_DIRS
    for path in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))
#: Conv types whose layers fold into plain convs.
FOLDABLE = {'DOConv', 'RefConv', 'DWSConv'}
#: SSD300 with VGG16 needs its full 300x300 input: heavy on CPU.
SLOW = {c for c in CONFIGS if 'ssd300_vgg16' in c}
SEG_SIZE = 32


def _param(config):
    marks = [pytest.mark.slow] if config in SLOW else []
    return pytest.param(config, marks=marks, id=config)


def _conv_types(cfg_model) -> set:
    found = set()

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ('conv_cfg', 'condconv_cfg') and isinstance(
                        value, dict):
                    found.add(value.get('type'))
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(cfg_model.to_dict() if hasattr(cfg_model, 'to_dict') else
          cfg_model)
    if cfg_model.backbone.get('type') == 'MultiDomainResNet26':
        found.add('DWSConv')
    return found


def _download_free(node) -> bool:
    text = repr(node)
    return '://' not in text


def _from_scratch(cfg) -> None:
    """Drop the published ImageNet init (a download); its exact loading is
    tested offline in test_configs_pretrained_init.py."""
    if cfg.model.get('pretrained'):
        cfg.model.pretrained = None
    init_cfg = cfg.model.backbone.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None


def _det_batch(model, cfg, size):
    from mmdet.testing import demo_mm_inputs
    num_classes = cfg.model.get('roi_head', cfg.model).get(
        'bbox_head', {}).get('num_classes', 20)
    packed = demo_mm_inputs(
        batch_size=1, image_shapes=[(3, size, size)], num_items=[2],
        num_classes=num_classes,
        with_mask='mask_head' in cfg.model.get('roi_head', {}))
    return packed


def _seg_batch(num_classes, size, batch_size=2):
    """Two images: DeepLab's image-pool BN needs more than one value."""
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for _ in range(batch_size):
        sample = SegDataSample()
        gt = torch.randint(0, num_classes, (1, size, size))
        sample.gt_sem_seg = PixelData(data=gt)
        sample.set_metainfo(
            dict(img_shape=(size, size), ori_shape=(size, size),
                 pad_shape=(size, size), scale_factor=(1.0, 1.0),
                 flip=False, img_path='tiny.png'))
        samples.append(sample)
        inputs.append(
            torch.randint(0, 255, (3, size, size), dtype=torch.uint8))
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('config', [_param(c) for c in CONFIGS])
def test_config_builds_trains_predicts_and_folds(config):
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert cfg.custom_imports == dict(
        imports=['mmconvplug'], allow_failed_imports=False)
    _from_scratch(cfg)
    assert _download_free(cfg.model), 'the model would download weights'
    is_seg = cfg.default_scope == 'mmseg'
    if is_seg:  # the stock preprocessor pads every image to the crop size
        cfg.model.data_preprocessor.size = (SEG_SIZE, SEG_SIZE)
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()  # as the Runner does (SSD's L2Norm needs it)

    if is_seg:
        size = SEG_SIZE
        batch = _seg_batch(cfg.model.decode_head.num_classes, size)
    else:
        size = 300 if "ssd300" in config else 96
        batch = _det_batch(model, cfg, size)

    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k
                for v in (v if isinstance(v, list) else [v]))
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None for p in model.backbone.parameters())

    model.eval()
    data = model.data_preprocessor(batch, training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
        features = model.extract_feat(data['inputs'])
    assert len(results) == len(batch['inputs'])
    if is_seg:
        assert results[0].pred_sem_seg.data.shape[-2:] == (size, size)
    else:
        assert 'bboxes' in results[0].pred_instances

    if _conv_types(cfg.model) & FOLDABLE:
        folded = fold_model(model)
        with torch.no_grad():
            folded_features = folded.extract_feat(data['inputs'])
        for a, b in zip(features, folded_features):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_folded_ssd_doconv_loads_into_the_stock_deploy_config():
    """After folding, the deploy config names mmdet's stock ``SSDVGG`` (its
    ``conv_swap`` dropped) and the folded weights load strictly."""
    from mmconvplug.apis import make_deploy_config
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'doconv', 'ssd300_vgg16-doconv_8xb8-24e_voc0712.py'))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    folded, report = fold_model(model, return_report=True,
                                plain_conv_only=True)
    deploy = make_deploy_config(cfg, report, ['DOConv'])
    assert deploy.model.backbone.type == 'SSDVGG'
    assert 'conv_cfg' not in deploy.model.backbone
    stock = MODELS.build(deploy.model)
    stock.load_state_dict(folded.state_dict(), strict=True)
