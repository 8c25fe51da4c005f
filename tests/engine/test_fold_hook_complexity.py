"""FoldHook's once-per-run complexity log, through mmconvplug.analysis
(fast: a small module instead of a Runner; the Runner path is in
tests/fold/test_fold_hook.py)."""
import logging
from types import SimpleNamespace

import torch
from torch import nn

from mmconvplug.convs import conv_variants
from mmconvplug.engine.hooks import FoldHook
from mmconvplug.fold import fold_model


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_complexity_log_lists_params_flops_and_time_of_both_models():
    torch.manual_seed(0)
    trained = nn.Sequential(
        conv_variants()['DOConv'](3, 8, 3, padding=1), nn.ReLU())
    folded = fold_model(trained)
    logger = logging.getLogger('fold_hook_complexity_test')
    records = _Records()
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    hook = FoldHook(timing_iters=2)
    hook._trained, hook._folded = trained, folded
    hook._log_complexity(SimpleNamespace(logger=logger),
                         torch.randn(1, 3, 16, 16))
    (message, ) = records.messages
    assert 'folded / trained inference time' in message
    lines = {line.split('|')[1].strip(): line for line in message.splitlines()
             if line.startswith('|') and 'model' not in line}
    assert set(lines) == {'trained', 'folded'}
    conv_flops = 3 * 8 * 9 * 16 * 16 / 1e9
    assert f'{conv_flops:.3f}' in lines['folded']
    assert trained.training  # left as it was
