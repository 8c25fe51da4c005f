"""Checkpoints we write for use elsewhere hold plain data only.

``tools/fold.py`` and ``tools/convert_pretrained.py`` output must load with
plain ``torch.load(path, weights_only=True)`` in a process that never
imports mmconvplug (which otherwise allowlists mmengine's ``HistoryBuffer``
and numpy types): ``state_dict`` and a plain-typed ``meta``, nothing else.
"""
import collections
import importlib.util
import json
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from deploy_tiny_models import REPO
from mmengine.logging.history_buffer import HistoryBuffer
from torch import nn

from mmconvplug.utils.checkpoint_io import plain_checkpoint, to_plain_data

#: Loads each file given on the command line as a stock tool would, without
#: mmconvplug; prints what it read (or the error) and whether mmconvplug got
#: imported.
STOCK_LOAD = r'''
import json, sys, torch
for path in sys.argv[1:]:
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        print(json.dumps(dict(keys=sorted(ckpt), meta=ckpt.get('meta'))))
    except Exception as error:
        print(json.dumps(dict(error=str(error))))
print(json.dumps(dict(plugin=[m for m in sys.modules
                              if m.startswith('mmconvplug')])))
'''


def stock_load(*paths):
    """``torch.load(weights_only=True)`` of each path in a fresh process
    that does not import mmconvplug; returns what it read from each."""
    proc = subprocess.run([sys.executable, '-c', STOCK_LOAD, *paths],
                          capture_output=True, text=True, timeout=120,
                          cwd=osp.dirname(paths[0]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    *results, modules = [json.loads(x) for x in proc.stdout.splitlines()]
    assert modules == {'plugin': []}
    return results


def training_checkpoint(state_dict):
    """What mmengine's Runner saves: meta with numpy values, a message hub
    of HistoryBuffers, optimizer and scheduler state."""
    buffer = HistoryBuffer()
    buffer.update(0.5)
    return {
        'meta': {
            'epoch': 3, 'iter': np.int64(120), 'seed': 7,
            'dataset_meta': {'classes': ('a', 'b'),
                             'palette': [(1, 2, 3), (4, 5, 6)]},
            'lr': np.float32(0.01), 'scale': np.array([1.0, 2.0]),
            'hub_copy': buffer,
        },
        'state_dict': state_dict,
        'message_hub': {'log_scalars': {'train/loss': buffer}},
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01}]},
        'param_schedulers': [{'milestones': collections.Counter([8, 11])}],
    }


def test_to_plain_data_converts_numpy_and_drops_objects():
    plain, dropped = to_plain_data(
        {'a': np.float64(1.5), 'b': [np.int32(2), {np.str_('c'): None}],
         'd': {1, 3, 2}, 'e': HistoryBuffer(), 'f': (True, 'x', 4.0),
         'g': torch.ones(2), 'h': torch.float16}, 'meta')
    assert plain['a'] == 1.5 and type(plain['a']) is float
    assert plain['b'] == [2, {'c': None}] and type(plain['b'][0]) is int
    assert type(next(iter(plain['b'][1]))) is str
    assert plain['d'] == [1, 2, 3]
    assert plain['f'] == (True, 'x', 4.0)
    assert torch.equal(plain['g'], torch.ones(2))
    assert plain['h'] == 'torch.float16'
    assert 'e' not in plain
    assert dropped == [
        'meta.e (mmengine.logging.history_buffer.HistoryBuffer)']


def test_plain_checkpoint_refuses_a_whole_checkpoint_as_state_dict():
    with pytest.raises(ValueError, match='not tensors'):
        plain_checkpoint({'state_dict': {'w': torch.ones(1)}, 'meta': {}})


def test_plain_checkpoint_keeps_module_versions(tmp_path):
    state = nn.BatchNorm2d(2).state_dict()
    ckpt, _ = plain_checkpoint(state, {'epoch': np.int64(1)})
    assert ckpt['state_dict']._metadata == state._metadata
    assert list(ckpt) == ['meta', 'state_dict']


@pytest.fixture
def convert_tool():
    spec = importlib.util.spec_from_file_location(
        'deploy_tests_convert_pretrained',
        osp.join(REPO, 'tools', 'convert_pretrained.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_pretrained_output_loads_without_the_plugin(
        tmp_path, convert_tool):
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    src, out = str(tmp_path / 'trained.pth'), str(tmp_path / 'doconv.pth')
    torch.save(training_checkpoint(plain.state_dict()), src)
    assert convert_tool.main([src, out, '--variant', 'doconv']) == 0

    source, read = stock_load(src, out)
    # the training checkpoint is what a stock process refuses (torch >= 2.6)
    assert re.search('Unsupported (global|class)', source['error'])
    assert read['keys'] == ['meta', 'state_dict']
    assert read['meta'] == {
        'epoch': 3, 'iter': 120, 'seed': 7, 'lr': pytest.approx(0.01),
        'scale': [1.0, 2.0],
        'dataset_meta': {'classes': ['a', 'b'],
                         'palette': [[1, 2, 3], [4, 5, 6]]}}
    converted = torch.load(out, weights_only=True)['state_dict']
    assert '0.weight' in converted and '0.D_delta' in converted


def test_folded_checkpoint_loads_without_the_plugin(tmp_path):
    """tools/fold.py on a Runner-style checkpoint (message hub, optimizer,
    numpy meta) of the tiny DeepLabv3+ with DO-Conv."""
    from deploy_tiny_models import build_model, case_config
    spec = importlib.util.spec_from_file_location(
        'deploy_tests_fold', osp.join(REPO, 'tools', 'fold.py'))
    fold_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fold_tool)

    cfg = case_config('deeplabv3plus', 'unused/')
    config, src = str(tmp_path / 'config.py'), str(tmp_path / 'iter_4.pth')
    cfg.dump(config)
    torch.save(training_checkpoint(build_model(cfg).state_dict()), src)
    out = str(tmp_path / 'folded.pth')
    assert fold_tool.main([config, src, out, '--shape', '64', '128']) == 0

    source, read = stock_load(src, out)
    assert re.search('Unsupported (global|class)', source['error'])
    assert read['keys'] == ['meta', 'state_dict']
    meta = read['meta']
    assert meta['dataset_meta'] == {'classes': ['a', 'b'],
                                    'palette': [[1, 2, 3], [4, 5, 6]]}
    assert meta['iter'] == 120 and meta['scale'] == [1.0, 2.0]
    assert meta['mmconvplug_fold']['folded_layers'] > 0
    assert 'hub_copy' not in meta
