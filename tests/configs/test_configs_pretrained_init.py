"""Every paper config starts from the published ImageNet weights, exactly.

For each config family a checkpoint is written in the *published* key
layout (torchvision ResNet-50; mmdet's ``open-mmlab://vgg16_caffe``; mmseg's
``open-mmlab://resnet50_v1c``; the official SCNet releases), the config's
own init is pointed at it (only the path changes), the model is built and
initialised as the Runner does (``init_weights()``, with the strictness
the config's ``CheckpointFitHook`` gives the inits, so a partial load
would raise), and its
backbone features are compared with the plain model's given the same
checkpoint: the stock mmdet/mmseg config, or for SCNet an independent
reimplementation of the official model (float32, relative error <= 1e-6).
The RefConv configs use the official random init of the refocusing map
(the paper's best setting), so for them the basis must load exactly and
the features must equal the stock model's with each kernel refocused by
the official formula, and not the plain stock model's.
Nothing is downloaded.
"""
import glob
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import get_installed_path

from mmconvplug.backbones.sc_resnet import SCNET_IMAGENET_CHECKPOINTS
from mmconvplug.engine.checkpoint_fit import (
    IncompatibleKeysError,
    strict_pretrained_inits,
)

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'backbones'))
sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'convs'))
from refconv_official_reference import refocus_stock_kernels_officially  # noqa: E402
from scnet_official_reference import OfficialSCNet, randomized  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TORCHVISION_R50 = 'torchvision://resnet50'
VGG16_CAFFE = 'open-mmlab://vgg16_caffe'
R50_V1C = 'open-mmlab://resnet50_v1c'
PUBLISHED = {
    TORCHVISION_R50, VGG16_CAFFE, R50_V1C,
    *SCNET_IMAGENET_CHECKPOINTS.values()
}
#: Configs without a published init to keep (their header says why).
NO_PUBLISHED_INIT = {
    'condconv/ssd300_mobilenetv1_8xb8-24e_coco.py',
    'condconv/ssd300_mobilenetv1-condconv8_8xb8-24e_coco.py',
    'dwsconv/fcn_mdresnet26-dws-2dom_4xb2-40k_cityscapes-512x1024.py',
    'dwsconv/fcn_mdresnet26-dws-2dom-adapt_4xb4-20k_voc12aug-512x512.py',
    'keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_coco.py',  # CPU demo
    'keypoint_rcnn/keypoint-rcnn_r18_fpn_tiny_crowdpose.py',  # CPU tests
    'keypoint_rcnn/mask-keypoint-rcnn_r18_fpn_tiny_coco.py',  # CPU tests
}
PAPER_DIRS = ('doconv', 'refconv', 'scnet', 'condconv', 'dwsconv',
              'keypoint_rcnn')
ALL_CONFIGS = sorted(
    osp.relpath(path, osp.join(REPO, 'configs')) for folder in PAPER_DIRS
    for path in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))

DEEPLAB_CITYSCAPES = (
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024'
    '.py')
SSD_VOC = 'mmdet::pascal_voc/ssd300_voc0712.py'
#: config -> (published init, checkpoint layout, plain model to compare):
#: a stock config, or ('official', dilated) for SCNet.
EXACTNESS = {
    'doconv/mask-rcnn_r50-doconv_fpn_1x_coco.py':
    (TORCHVISION_R50, 'torchvision_resnet50',
     'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    'keypoint_rcnn/keypoint-rcnn_r50-doconv_fpn_1x_coco.py':
    (TORCHVISION_R50, 'torchvision_resnet50',
     'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    'keypoint_rcnn/keypoint-rcnn_r50-doconv_fpn_1x_crowdpose.py':
    (TORCHVISION_R50, 'torchvision_resnet50',
     'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    'keypoint_rcnn/keypoint-rcnn_r50-doconv_fpn_1x_aic.py':
    (TORCHVISION_R50, 'torchvision_resnet50',
     'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    'doconv/ssd300_vgg16-doconv_8xb8-24e_voc0712.py': (VGG16_CAFFE,
                                                       'vgg16_caffe', SSD_VOC),
    'doconv/ssd300_vgg16-doconv_8xb8-24e_coco.py':
    (VGG16_CAFFE, 'vgg16_caffe', 'mmdet::ssd/ssd300_coco.py'),
    'refconv/ssd300_vgg16-refconv_8xb8-24e_voc0712.py':
    (VGG16_CAFFE, 'vgg16_caffe', SSD_VOC),
    'doconv/deeplabv3plus_r50-d8-doconv_4xb2-80k_cityscapes-512x1024.py':
    (R50_V1C, 'resnet50_v1c', DEEPLAB_CITYSCAPES),
    'refconv/deeplabv3plus_r50-d8-refconv_4xb2-80k_cityscapes-512x1024.py':
    (R50_V1C, 'resnet50_v1c', DEEPLAB_CITYSCAPES),
    'scnet/faster-rcnn_scnet50_fpn_1x_coco.py':
    (SCNET_IMAGENET_CHECKPOINTS['scnet50'], 'scnet50', ('official', False)),
    'scnet/mask-rcnn_scnet50_fpn_1x_coco.py':
    (SCNET_IMAGENET_CHECKPOINTS['scnet50'], 'scnet50', ('official', False)),
    'keypoint_rcnn/keypoint-rcnn_scnet50_fpn_1x_coco.py':
    (SCNET_IMAGENET_CHECKPOINTS['scnet50'], 'scnet50', ('official', False)),
    'scnet/deeplabv3plus_scnet50-d8_4xb2-80k_cityscapes-512x1024.py':
    (SCNET_IMAGENET_CHECKPOINTS['scnet50_v1d'], 'scnet50_v1d', ('official',
                                                                True)),
}
#: Configs that must stop a run on a partial load (the paper configs).
STRICT_KEYS = set(EXACTNESS) | {
    'doconv/deeplabv3plus_r50-d8-doconv_4xb4-40k_voc12aug-512x512.py',
    'keypoint_rcnn/keypoint-rcnn_r50_fpn_1x_coco.py',
    'keypoint_rcnn/keypoint-rcnn_r50_fpn_1x_crowdpose.py',
    'keypoint_rcnn/keypoint-rcnn_r50_fpn_1x_aic.py',
    'keypoint_rcnn/mask-keypoint-rcnn_r50_fpn_1x_coco.py',
    'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py',
    'doconv/deeplabv3plus_r50-d8-doconv-aspp_4xb2-80k_cityscapes-512x1024.py',
    'refconv/deeplabv3plus_r50-d8-refconv-aspp_4xb2-80k_cityscapes-512x1024.py',
    'refconv/ssd300_vgg16-refconv-all_8xb8-24e_voc0712.py',
    'condconv/ssd300_mobilenetv1_8xb8-24e_coco.py',
    'condconv/ssd300_mobilenetv1-condconv8_8xb8-24e_coco.py',
}


def _config(path: str) -> Config:
    """A config of ours (relative to configs/) or a stock one
    (``mmdet::...`` / ``mmseg::...``, from the installed package)."""
    if '::' in path:
        package, relative = path.split('::')
        path = osp.join(get_installed_path(package), '.mim', 'configs',
                        relative)
    else:
        path = osp.join(REPO, 'configs', path)
    return Config.fromfile(path)


def _is_seg(cfg: Config) -> bool:
    return cfg.get('default_scope') == 'mmseg'


def backbone_init(cfg: Config):
    """The checkpoint the backbone starts from: mmseg's model-level
    ``pretrained`` or the backbone's ``Pretrained`` init_cfg (None when it
    trains from scratch)."""
    if cfg.model.get('pretrained'):
        return cfg.model.pretrained
    init_cfg = cfg.model.backbone.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        return init_cfg['checkpoint']
    return None


def point_init_at(cfg: Config, path: str) -> None:
    """Change only the checkpoint path of the config's init."""
    if cfg.model.get('pretrained'):
        cfg.model.pretrained = path
    else:
        cfg.model.backbone.init_cfg.checkpoint = path


# --- checkpoints in the published key layouts (names from the published
# --- models' definitions, values random) ---------------------------------


class _Writer:

    def __init__(self, seed: int, batches_tracked: bool):
        self.state = {}
        self.gen = torch.Generator().manual_seed(seed)
        self.batches_tracked = batches_tracked

    def conv(self, name, cout, cin, k, bias=False):
        scale = (1.0 / (cin * k * k))**0.5
        self.state[f'{name}.weight'] = torch.randn(
            cout, cin, k, k, generator=self.gen) * scale
        if bias:
            self.state[f'{name}.bias'] = torch.randn(cout,
                                                     generator=self.gen) * 0.1

    def bn(self, name, c):
        g = self.gen
        self.state[f'{name}.weight'] = torch.rand(c, generator=g) * .5 + .75
        self.state[f'{name}.bias'] = torch.randn(c, generator=g) * .1
        self.state[f'{name}.running_mean'] = torch.randn(c, generator=g) * .1
        self.state[f'{name}.running_var'] = torch.rand(c, generator=g) + .5
        if self.batches_tracked:
            self.state[f'{name}.num_batches_tracked'] = torch.tensor(100)


def resnet50_state(deep_stem: bool, seed: int = 0) -> dict:
    """torchvision ``resnet50`` keys (7x7 ``conv1``/``bn1``, ``fc``; saved
    without ``num_batches_tracked``), or mmseg ``ResNetV1c`` keys (``stem.0
    /1/3/4/6/7``) as in ``open-mmlab://resnet50_v1c``."""
    w = _Writer(seed, batches_tracked=deep_stem)
    if deep_stem:
        w.conv('stem.0', 32, 3, 3)
        w.bn('stem.1', 32)
        w.conv('stem.3', 32, 32, 3)
        w.bn('stem.4', 32)
        w.conv('stem.6', 64, 32, 3)
        w.bn('stem.7', 64)
    else:
        w.conv('conv1', 64, 3, 7)
        w.bn('bn1', 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512),
                                                 (3, 4, 6, 3)),
                                             start=1):
        for index in range(blocks):
            name = f'layer{stage}.{index}'
            w.conv(f'{name}.conv1', planes, inplanes, 1)
            w.bn(f'{name}.bn1', planes)
            w.conv(f'{name}.conv2', planes, planes, 3)
            w.bn(f'{name}.bn2', planes)
            w.conv(f'{name}.conv3', planes * 4, planes, 1)
            w.bn(f'{name}.bn3', planes * 4)
            if index == 0:
                w.conv(f'{name}.downsample.0', planes * 4, inplanes, 1)
                w.bn(f'{name}.downsample.1', planes * 4)
            inplanes = planes * 4
    w.state['fc.weight'] = torch.randn(1000, 2048, generator=w.gen) * 0.02
    w.state['fc.bias'] = torch.zeros(1000)
    return w.state


def vgg16_caffe_state(seed: int = 0) -> dict:
    """``open-mmlab://vgg16_caffe``: the 13 convs of VGG16 at their
    ``features.N`` indices (ReLU / max-pool in between hold no tensors) and
    SSD's reduced fc6 (3x3, dilation 6) / fc7 (1x1) at ``features.31/33``."""
    w = _Writer(seed, batches_tracked=False)
    widths = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
              'M', 512, 512, 512)
    index, cin = 0, 3
    for width in widths:
        if width == 'M':
            index += 1
            continue
        w.conv(f'features.{index}', width, cin, 3, bias=True)
        index, cin = index + 2, width
    w.conv('features.31', 1024, 512, 3, bias=True)
    w.conv('features.33', 1024, 1024, 1, bias=True)
    return w.state


def scnet_reference(v1d: bool, dilated: bool = False, seed: int = 0):
    """The official SCNet-50 (or v1d) with random weights, and its state
    dict as the official release stores it."""
    model = randomized(OfficialSCNet(50, v1d=v1d, dilated=dilated), seed=seed)
    return model, model.state_dict()


LAYOUTS = {
    'torchvision_resnet50': lambda: resnet50_state(deep_stem=False),
    'resnet50_v1c': lambda: resnet50_state(deep_stem=True),
    'vgg16_caffe': vgg16_caffe_state,
    'scnet50': lambda: scnet_reference(v1d=False)[1],
    'scnet50_v1d': lambda: scnet_reference(v1d=True)[1],
}


@pytest.fixture(scope='module')
def published_checkpoint(tmp_path_factory):
    """``layout -> path`` of a checkpoint file in that layout (written once
    per layout)."""
    paths = {}

    def get(layout: str) -> str:
        if layout not in paths:
            path = tmp_path_factory.mktemp('published') / f'{layout}.pth'
            torch.save(LAYOUTS[layout](), str(path))
            paths[layout] = str(path)
        return paths[layout]

    return get


def init_backbone_as_the_runner_does(cfg: Config) -> torch.nn.Module:
    """Build the config's model (its backbone alone when the init lives on
    the backbone) and call ``init_weights()`` with the strictness the
    config's ``CheckpointFitHook`` gives the model's ``Pretrained`` inits
    (its ``before_run``); returns the backbone in eval mode."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint_fit') or {}
    init_default_scope(cfg.default_scope)
    if _is_seg(cfg):
        # mmseg's EncoderDecoder hands model.pretrained to the backbone.
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    else:
        model = MODELS.build(cfg.model.backbone)
    if hook.get('strict', False):
        strict_pretrained_inits(model)
    model.init_weights()
    backbone = model.backbone if _is_seg(cfg) else model
    backbone.eval()  # (mmdet/mmseg ResNet.train returns None)
    return backbone


def _relative_error(ours, theirs) -> float:
    return max(((a - b).abs().max() / b.abs().max()).item()
               for a, b in zip(ours, theirs))


@pytest.mark.parametrize('config', ALL_CONFIGS)
def test_paper_config_keeps_a_published_init(config):
    cfg = _config(config)
    init = backbone_init(cfg)
    if config in NO_PUBLISHED_INIT:
        assert init is None
        return
    assert init in PUBLISHED, (
        f'{config}: the backbone must start from a published ImageNet init '
        f'({sorted(PUBLISHED)}), got {init!r}')
    backbone_type = cfg.model.backbone.type
    if backbone_type == 'SCResNetV1d':
        assert init == SCNET_IMAGENET_CHECKPOINTS['scnet50_v1d']
    elif backbone_type == 'SCResNet':
        assert init == SCNET_IMAGENET_CHECKPOINTS[
            f'scnet{cfg.model.backbone.get("depth", 50)}']
    if config in STRICT_KEYS:
        assert cfg.default_hooks.checkpoint_fit == dict(
            type='CheckpointFitHook', strict=True)


def test_configs_without_a_published_init_say_so_in_their_header():
    for config in NO_PUBLISHED_INIT:
        with open(osp.join(REPO, 'configs', config)) as f:
            header = ' '.join(
                line.lstrip('#').strip()
                for line in f.read().split('_base_')[0].lower().splitlines())
        if 'tiny' in config:
            assert 'from scratch' in header
        elif 'adapt' in config:  # step 2 starts from step 1's checkpoint
            assert 'init: the step-1 checkpoint (load_from' in header
        else:
            assert 'init: from scratch' in header
            assert ('no published' in header
                    or 'no imagenet release' in header), config


@pytest.mark.parametrize('config', sorted(EXACTNESS))
def test_published_init_loads_exactly(config, published_checkpoint):
    url, layout, plain = EXACTNESS[config]
    path = published_checkpoint(layout)
    cfg = _config(config)
    assert backbone_init(cfg) == url  # the config's own, untouched init
    point_init_at(cfg, path)
    ours = init_backbone_as_the_runner_does(cfg)
    variant = next(v for k, v in (('doconv', 'DOConv'), ('refconv', 'RefConv'),
                                  ('scnet', 'SCConv')) if k in config)
    assert variant in {type(m).__name__ for m in ours.modules()}

    if plain[0] == 'official':
        size = 64 if plain[1] else 128  # SCConv's pooling needs >= 4 px
        reference, state = scnet_reference(v1d=layout.endswith('v1d'),
                                           dilated=plain[1])
        assert torch.load(path).keys() == state.keys()
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            theirs = [
                reference.features(x)[i]
                for i in cfg.model.backbone.out_indices
            ]
    else:
        stock = _config(plain)
        assert backbone_init(stock) == url  # the stock base's own init
        point_init_at(stock, path)
        stock_backbone = init_backbone_as_the_runner_does(stock)
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            theirs = stock_backbone(x)
    with torch.no_grad():
        features = ours(x)
    assert len(features) == len(theirs)
    assert [f.shape for f in features] == [t.shape for t in theirs]
    if variant == 'RefConv':
        # the official random map: not the plain network at step 0 ...
        assert _relative_error(features, theirs) > 1e-2
        # ... but the pretrained basis refocused by the official formula
        assert refocus_stock_kernels_officially(
            stock_backbone, ours, torch.load(path, weights_only=True)) > 0
        with torch.no_grad():
            theirs = stock_backbone(x)
    assert _relative_error(features, theirs) <= 1e-6


def test_wrong_depth_scnet_checkpoint_stops_the_run_naming_the_keys(
        tmp_path, published_checkpoint):
    """An SCNet-101 release given to the SCNet-50 config: the init raises
    before loading anything, naming the blocks SCNet-50 does not have."""
    state = torch.load(published_checkpoint('scnet50'))
    for index in range(6, 23):  # SCNet-101's layer3 has 23 blocks
        for key in [k for k in state if k.startswith('layer3.5.')]:
            state[key.replace('layer3.5.', f'layer3.{index}.',
                              1)] = state[key].clone()
    path = str(tmp_path / 'scnet101.pth')
    torch.save(state, path)
    cfg = _config('scnet/mask-rcnn_scnet50_fpn_1x_coco.py')
    point_init_at(cfg, path)
    init_default_scope('mmdet')
    backbone = MODELS.build(cfg.model.backbone)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    strict_pretrained_inits(backbone)
    with pytest.raises(IncompatibleKeysError) as error:
        backbone.init_weights()
    message = str(error.value)
    assert path in message
    assert 'layer3.6.*' in message and 'layer3.22.*' in message
    assert 'deeper network' in message
    assert 'layer3.5' not in message  # matched keys are not named
    # Nothing was loaded (mmengine's weight init may have run before).
    loaded = torch.load(published_checkpoint('scnet50'))
    after = backbone.state_dict()
    assert not torch.equal(after['layer1.0.conv1_a.weight'],
                           loaded['layer1.0.conv1_a.weight'])
    assert set(after) == set(before)


def test_deploy_config_of_a_paper_config_needs_no_plugin():
    """The strict key check is a training-side hook: the deploy config of
    a folded paper model drops it and stays a stock, plugin-free config."""
    from mmconvplug import fold_model
    from mmconvplug.apis import make_deploy_config
    cfg = _config('doconv/ssd300_vgg16-doconv_8xb8-24e_voc0712.py')
    assert cfg.default_hooks.checkpoint_fit.type == 'CheckpointFitHook'
    init_default_scope('mmdet')
    folded, report = fold_model(MODELS.build(cfg.model),
                                return_report=True,
                                plain_conv_only=True)
    deploy = make_deploy_config(cfg, report, ['DOConv'])
    assert 'checkpoint_fit' not in deploy.default_hooks
    assert 'logger' in deploy.default_hooks  # the stock hooks stay
    assert 'custom_imports' not in deploy
