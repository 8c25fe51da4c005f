"""The compatibility fixes in ``mmconvplug.compat``, each shown necessary.

* mmengine checkpoints load under torch's default ``weights_only=True``
  through the real Runner (``resume=True`` and ``load_from``), while a file
  carrying any other global is still refused.
* The stock mmdet SSD300 model predicts (mmdet 3.3.0 ``SSDHead`` bug).
* ``paramwise_cfg`` treats a conv variant as the conv it replaces.
* Every fix module declares its upstream range and issue, and a fix is a
  no-op outside its range.
"""
import collections
import copy
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmconvplug.compat import (
    UpstreamFix,
    fix_modules,
    register_checkpoint_safe_globals,
    upstream_fixes,
)
from mmconvplug.compat.safe_checkpoint_globals import history_buffer_getattr
from mmconvplug.compat.upstream import installed_version, version_in_range
from mmconvplug.utils.torch_compat import (
    clear_safe_globals,
    restricted_load,
    weights_only_load,
)


class _Regression(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)  # default_collate stacked the batch
        if mode == 'loss':
            return dict(loss=((out - 1)**2).mean())
        return out


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(2, generator=generator))


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=_Regression(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[3]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


@pytest.fixture(scope='module')
def trained_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('ckpt')
    _runner(work_dir, max_iters=2).train()
    return work_dir / 'iter_2.pth'


def test_mmengine_checkpoint_needs_the_safe_globals(trained_checkpoint):
    """Without the registered globals torch refuses mmengine's checkpoint."""
    clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|'
                           'numpy|Counter|getattr'):
            weights_only_load(trained_checkpoint)
    finally:
        register_checkpoint_safe_globals()
    checkpoint = weights_only_load(trained_checkpoint)
    assert checkpoint['meta']['iter'] == 2
    assert 'log_scalars' in checkpoint['message_hub']


def test_runner_resumes_from_its_checkpoint(trained_checkpoint, tmp_path):
    runner = _runner(
        tmp_path, max_iters=4, resume=True, load_from=str(trained_checkpoint))
    runner.train()
    assert runner.iter == 4
    # The param scheduler state (a collections.Counter) came back too.
    assert runner.param_schedulers[0].milestones == {3: 1}
    saved = torch.load(tmp_path / 'iter_4.pth')
    assert saved['meta']['iter'] == 4


def test_runner_load_from_loads_weights(trained_checkpoint, tmp_path):
    runner = _runner(tmp_path, max_iters=2, load_from=str(trained_checkpoint))
    runner.load_or_resume()
    expected = torch.load(trained_checkpoint)['state_dict']
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, expected[name])


class _RunsCode:
    """Pickles as a call to os.system: must never be executed."""

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_code_carrying_checkpoint_is_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _RunsCode()}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        weights_only_load(path)


def test_restricted_unpickler_loads_mmengine_checkpoints(trained_checkpoint):
    """The torch < 2.4 path (a restricted unpickler), run on this torch:
    it reads what torch's weights-only loader reads, tensor for tensor."""
    legacy = restricted_load(trained_checkpoint)
    native = weights_only_load(trained_checkpoint)
    assert legacy['meta']['iter'] == native['meta']['iter'] == 2
    assert legacy['state_dict'].keys() == native['state_dict'].keys()
    for name, value in native['state_dict'].items():
        torch.testing.assert_close(legacy['state_dict'][name], value)
    assert 'log_scalars' in legacy['message_hub']


def test_restricted_unpickler_refuses_code(tmp_path):
    sentinel = tmp_path / 'SENTINEL'

    class _Touches:

        def __reduce__(self):
            return (os.system, (f'touch {sentinel}', ))

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Touches()}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        restricted_load(path)
    assert not sentinel.exists()


def test_old_torch_refusal_is_reported_as_untrusted(tmp_path, monkeypatch):
    """On torch < 2.4 a refused global is named as such, never reported as
    a corrupt file; an mmengine checkpoint still loads."""
    from mmconvplug.utils import torch_compat
    from mmconvplug.utils.checkpoint_io import (
        UntrustedCheckpointError,
        load_checkpoint_file,
    )
    monkeypatch.setattr(torch_compat, 'has_native_safe_globals',
                        lambda: False)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _RunsCode()}, path)
    with pytest.raises(UntrustedCheckpointError, match='system'):
        load_checkpoint_file(path)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'n': collections.Counter(
        {3: 1})}, good)
    assert load_checkpoint_file(good)['n'] == {3: 1}


def test_restricted_getattr_refuses_everything_else():
    from mmengine.logging.history_buffer import HistoryBuffer
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='Refused getattr'):
        history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='Refused getattr'):
        history_buffer_getattr(os, 'system')


@pytest.fixture(scope='module')
def stock_ssd300_voc(tmp_path_factory):
    """The stock mmdet SSD300 VOC model, built once for this module."""
    config = tmp_path_factory.mktemp('ssd') / 'ssd.py'
    config.write_text("_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'\n")
    cfg = Config.fromfile(str(config))
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    return model.eval()


def _ssd_batch(model, batch_size=2):
    from mmdet.structures import DetDataSample
    inputs = [torch.randint(0, 255, (3, 300, 300), dtype=torch.uint8)
              for _ in range(batch_size)]
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_shape=(300, 300), ori_shape=(300, 300),
                 scale_factor=(1.0, 1.0), pad_shape=(300, 300)))
        samples.append(sample)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training=False)


def test_stock_ssd300_predicts(stock_ssd300_voc):
    model = stock_ssd300_voc
    data = _ssd_batch(model)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result in results:
        bboxes = result.pred_instances.bboxes
        assert bboxes.ndim == 2 and bboxes.shape[1] == 4
        assert result.pred_instances.scores.shape[0] == bboxes.shape[0]
        assert (result.pred_instances.labels < 20).all()


def test_ssd_head_predict_fails_without_the_fix(stock_ssd300_voc):
    """The upstream bug is real: without the patch predict raises."""
    from mmdet.models.dense_heads import SSDHead
    model = copy.deepcopy(stock_ssd300_voc)
    assert model.bbox_head.loss_cls is None  # set by the patched __init__
    del model.bbox_head.loss_cls  # the state the unpatched __init__ leaves
    assert SSDHead.__init__.__wrapped__ is not SSDHead.__init__
    data = _ssd_batch(model, batch_size=1)
    with torch.no_grad(), pytest.raises(AttributeError, match='loss_cls'):
        model(**data, mode='predict')


def _depthwise_decay(add_params, module) -> dict:
    from mmengine.optim import DefaultOptimWrapperConstructor
    constructor = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4)),
        dict(dwconv_decay_mult=0.))
    groups = []  # the module itself: the original recurses into the patch
    add_params(constructor, groups, module)
    names = {id(p): n for n, p in module.named_parameters()}
    return {names[id(p)]: g.get('weight_decay', 1e-4) for g in groups
            for p in g['params']}


def test_dwconv_decay_reaches_a_variant_only_with_the_fix():
    """``optim_conv_variants``: mmengine's own ``add_params`` gives a
    DOConv replacing a depthwise conv the full decay; the patched one the
    conv's 0 (every rule: tests/convs/test_conformance_freezing_optim.py)."""
    from mmengine.optim import DefaultOptimWrapperConstructor

    from mmconvplug.convs import DOConv
    patched = DefaultOptimWrapperConstructor.add_params
    original = patched._mmconvplug_original
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    layer = DOConv.from_conv(conv)
    assert set(_depthwise_decay(patched, conv).values()) == {0.}
    assert set(_depthwise_decay(patched, layer).values()) == {0.}
    assert set(_depthwise_decay(original, layer).values()) == {1e-4}


def test_every_fix_module_declares_range_and_issue():
    fixes = upstream_fixes()
    names = [m.__name__.rsplit('.', 1)[1] for m in fix_modules()]
    assert {'safe_checkpoint_globals', 'ssd_head_predict', 'cpu_distributed',
            'local_checkpoint_loader', 'optim_conv_variants'} <= set(fixes)
    assert set(fixes) <= set(names)
    for name, fix in fixes.items():
        assert fix.name == name
        assert fix.issue.startswith('https://github.com/')
        assert fix.summary and callable(fix.apply)
        for dist, spec in fix.conditions().items():
            assert installed_version(dist) is not None, (name, dist)
        # The pinned stack here is the one every fix was written for.
        assert fix.needed(), (name, fix.conditions())


@pytest.mark.parametrize('version,spec,expected', [
    ('3.3.0', '>=3.0.0,<=3.3.0', True),
    ('3.4.0', '>=3.0.0,<=3.3.0', False),
    ('2.5.1+cpu', '>=2.4', True),
    ('2.3.0', '>=2.4', False),
    (None, '>=0', False),
])
def test_version_in_range(version, spec, expected):
    assert version_in_range(version, spec) is expected


def test_fix_is_a_no_op_outside_its_range():
    calls = []
    torch_version = installed_version('torch')
    outside = UpstreamFix('probe', 'torch', f'>{torch_version.split("+")[0]}',
                          'https://github.com/x/y/issues/1', 'probe',
                          lambda: calls.append(1))
    assert not outside.needed() and outside.install() is False
    assert calls == []
    inside = UpstreamFix('probe', 'torch', '>=1.0',
                         'https://github.com/x/y/issues/1', 'probe',
                         lambda: calls.append(1),
                         requires={'not-a-distribution-xyz': '>=0'})
    assert inside.install() is False and calls == []  # missing requirement
    inside = UpstreamFix('probe', 'torch', '>=1.0',
                         'https://github.com/x/y/issues/1', 'probe',
                         lambda: calls.append(1))
    assert inside.install() is True and calls == [1]



# --- every import-time change, in one list ------------------------------

#: The changes made outside this package's fix modules (higher layers).
CHANGES_ELSEWHERE = {
    'conv_swap_build_hook': 'mmconvplug/swap/build_hook.py',
    'pretrained_key_check': 'mmconvplug/engine/pretrained_init.py',
}
#: Changes made only inside a context manager, for the time of one call,
#: and undone on exit (tested below): not import-time changes, so not in
#: ``UPSTREAM_CHANGES``.
SCOPED_CHANGES = {
    'onnx_roi_align': 'mmconvplug/deploy/roi_align_onnx.py',
}
_UPSTREAM = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'torch')


def test_every_import_time_change_is_in_one_list():
    """After ``import mmconvplug``: the compat modules' changes and the two
    of the higher layers, each with its reason, range and upstream link;
    ``mmconvplug info`` prints this list."""
    from mmconvplug.compat import APPLIED, UPSTREAM_CHANGES
    from mmconvplug.compat.upstream import KINDS
    expected = set(upstream_fixes()) | set(CHANGES_ELSEWHERE)
    assert set(UPSTREAM_CHANGES) == expected
    kinds = {name: change.kind for name, change in UPSTREAM_CHANGES.items()}
    assert kinds['optim_conv_variants'] == 'extension'
    assert kinds['conv_swap_build_hook'] == 'extension'
    assert kinds['pretrained_key_check'] == 'replacement'
    for name, change in UPSTREAM_CHANGES.items():
        assert change.kind in KINDS
        assert change.summary and change.versions and callable(change.apply)
        assert change.issue.startswith('https://github.com/'), name
        assert APPLIED[name], name  # the pinned stack needs every one


def _patches(path):
    """Lines of ``path`` that change upstream objects: an attribute set on
    a name imported from an upstream package, a ``force=True``
    registration."""
    import ast
    tree = ast.parse(open(path).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and \
                node.module.split('.')[0] in _UPSTREAM:
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split('.')[0]
                         for a in node.names
                         if a.name.split('.')[0] in _UPSTREAM)

    def root(expr):
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        return getattr(expr, 'id', None)

    lines = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign,
                                               ast.AnnAssign)) else [])
        if any(isinstance(t, ast.Attribute) and root(t) in names
               for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and any(
                k.arg == 'force' and getattr(k.value, 'value', None) is True
                for k in node.keywords):
            lines.append(node.lineno)
    return lines


def test_no_module_patches_upstream_outside_the_list():
    """A module that sets attributes of upstream objects, or registers over
    an upstream name, declares its change (``FIX`` / ``CHANGE``), and the
    change is in the one list."""
    import mmconvplug
    from mmconvplug.compat import UPSTREAM_CHANGES
    root = os.path.dirname(mmconvplug.__file__)
    declared = {os.path.join(os.path.dirname(root), path)
                for path in (*CHANGES_ELSEWHERE.values(),
                             *SCOPED_CHANGES.values())}
    declared |= {module.__file__ for module in fix_modules()}
    offenders = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.py') and _patches(path) and \
                    os.path.realpath(path) not in {
                        os.path.realpath(p) for p in declared}:
                offenders.append(f'{path}:{_patches(path)}')
    assert not offenders, (
        'these change upstream behaviour at import without an entry in '
        'mmconvplug.compat.UPSTREAM_CHANGES: ' + ', '.join(offenders))
    assert set(CHANGES_ELSEWHERE) <= set(UPSTREAM_CHANGES)


def test_the_scoped_roi_align_symbolic_is_undone_on_exit():
    """``onnx_roi_align`` swaps mmcv's ``RoIAlign`` ONNX symbolic in for one
    export only: after the block, and after an error inside it, mmcv's own
    symbolic is back, and importing mmconvplug never changes it."""
    pytest.importorskip('mmcv.ops')
    from mmcv.ops.roi_align import RoIAlignFunction

    import mmconvplug  # noqa: F401
    from mmconvplug.deploy.roi_align_onnx import (
        _roi_align_symbolic,
        onnx_roi_align,
    )
    original = RoIAlignFunction.__dict__['symbolic']
    assert original.__func__ is not _roi_align_symbolic
    with onnx_roi_align():
        assert RoIAlignFunction.symbolic is _roi_align_symbolic
    assert RoIAlignFunction.__dict__['symbolic'] is original
    with pytest.raises(RuntimeError, match='inside'):
        with onnx_roi_align():
            raise RuntimeError('inside')
    assert RoIAlignFunction.__dict__['symbolic'] is original
