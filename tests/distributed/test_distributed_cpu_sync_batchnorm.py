"""SyncBN under CPU DDP: reverted to BatchNorm with a warning (unit level;
the 2-process run through tools/dist_train.sh is in
test_distributed_families.py)."""
import logging

import torch
from mmengine.runner import Runner
from torch import nn

from mmconvplug.compat.cpu_sync_batchnorm import (
    FIX,
    revert_sync_batchnorm_on_cpu,
)


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4), nn.ReLU())


def test_reverted_when_distributed_on_cpu(caplog):
    model = _model()
    with torch.no_grad():
        model[1].weight.uniform_()
        model[1].running_mean.normal_()
    weight = model[1].weight.clone()
    logger = logging.getLogger('mmconvplug-test-syncbn')
    with caplog.at_level(logging.WARNING, logger=logger.name):
        reverted = revert_sync_batchnorm_on_cpu(model, True, logger)
    assert isinstance(reverted[1], nn.modules.batchnorm._BatchNorm)
    assert not isinstance(reverted[1], nn.SyncBatchNorm)
    assert torch.equal(reverted[1].weight, weight)
    assert '1 SyncBN layers reverted to BatchNorm' in caplog.text
    reverted.train()(torch.randn(2, 3, 5, 5))  # BN runs on CPU


def test_left_alone_when_not_distributed_or_without_syncbn(caplog):
    logger = logging.getLogger('mmconvplug-test-syncbn')
    with caplog.at_level(logging.WARNING, logger=logger.name):
        model = _model()
        assert revert_sync_batchnorm_on_cpu(model, False, logger) is model
        assert isinstance(model[1], nn.SyncBatchNorm)
        plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        assert revert_sync_batchnorm_on_cpu(plain, True, logger) is plain
    assert not caplog.text


def test_installed_on_the_pinned_mmengine():
    assert FIX.needed()
    assert getattr(Runner.wrap_model, '_mmconvplug_patched', False)
