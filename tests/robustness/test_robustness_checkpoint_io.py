"""Safe checkpoint IO: clear errors on bad files, all-or-nothing writes.

* :func:`load_checkpoint_file` keeps ``weights_only=True``: a file carrying a
  pickled call is refused and the call never runs (a sentinel file it would
  create stays absent), directly, through ``mmengine.runner.load_checkpoint``
  and through a real Runner's ``load_from``.
* missing / empty / truncated / corrupted files give errors naming the file.
* :func:`atomic_save` never leaves a partial file at the target path and
  never writes over an existing file unless asked.
"""
import os
import pickle

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from mmconvplug.utils import (
    CorruptCheckpointError,
    UntrustedCheckpointError,
    atomic_save,
    load_checkpoint_file,
)


class _CreatesSentinel:
    """Unpickles as ``os.system('touch SENTINEL')``: must never run."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f'touch {self.sentinel}', ))


def _malicious_checkpoint(tmp_path):
    sentinel = tmp_path / 'PAYLOAD_RAN'
    path = tmp_path / 'malicious.pth'
    torch.save(
        {
            'meta': {},
            'state_dict': {'linear.weight': torch.zeros(1, 2)},
            'payload': _CreatesSentinel(sentinel)
        }, path)
    return path, sentinel


@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save({'meta': {'iter': 3}, 'state_dict': {'w': torch.arange(4.)}},
               path)
    return path


def test_loads_a_good_checkpoint(good_checkpoint):
    loaded = load_checkpoint_file(good_checkpoint)
    assert loaded['meta']['iter'] == 3
    torch.testing.assert_close(loaded['state_dict']['w'], torch.arange(4.))


def test_malicious_checkpoint_is_refused_not_executed(tmp_path):
    path, sentinel = _malicious_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message
    assert 'system' in message  # names the refused global
    assert 'weights_only' in message
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not sentinel.exists()


def test_missing_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'nowhere' / 'iter_4.pth'
    with pytest.raises(FileNotFoundError, match='does not exist') as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='is a directory'):
        load_checkpoint_file(tmp_path)


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'random bytes',
                                    'flipped bytes'])
def test_damaged_checkpoint_names_the_file(good_checkpoint, tmp_path, damage):
    data = good_checkpoint.read_bytes()
    if damage == 'truncated':
        data = data[:len(data) // 2]
    elif damage == 'empty':
        data = b''
    elif damage == 'random bytes':
        data = bytes(range(256)) * 3
    else:
        middle = len(data) // 2
        data = data[:middle - 50] + b'\xff' * 100 + data[middle + 50:]
    path = tmp_path / f'{damage.replace(" ", "_")}.pth'
    path.write_bytes(data)
    with pytest.raises(CorruptCheckpointError,
                       match='truncated or corrupted') as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)
    assert f'({len(data)} bytes)' in str(info.value)


def test_mmengine_load_checkpoint_goes_through_the_safe_loader(tmp_path):
    path, sentinel = _malicious_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpointError, match='malicious.pth'):
        load_checkpoint(nn.Linear(2, 1), str(path))
    assert not sentinel.exists()


class _Regression(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.stack(inputs)
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - 1)**2).mean())
        return out


class _Points(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.full((2, ), float(index)))


def _runner(work_dir, **kwargs):
    return Runner(
        model=_Regression(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        **kwargs)


def test_runner_load_from_refuses_malicious_checkpoint(tmp_path):
    path, sentinel = _malicious_checkpoint(tmp_path)
    runner = _runner(tmp_path / 'work', load_from=str(path))
    with pytest.raises(UntrustedCheckpointError, match='malicious.pth'):
        runner.load_or_resume()
    assert not sentinel.exists()


def test_runner_resume_from_truncated_checkpoint_names_it(tmp_path):
    _runner(tmp_path / 'first').train()
    checkpoint = tmp_path / 'first' / 'iter_2.pth'
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:len(data) // 3])
    runner = _runner(tmp_path / 'second', resume=True,
                     load_from=str(checkpoint))
    with pytest.raises(CorruptCheckpointError, match='iter_2.pth'):
        runner.load_or_resume()


# -- atomic_save ----------------------------------------------------------


class _FailsWhilePickling:
    """Raises from ``__reduce__``: torch.save fails after writing has begun."""

    def __reduce__(self):
        raise RuntimeError('simulated failure in the middle of saving')


def test_atomic_save_writes_and_loads_back(tmp_path):
    target = tmp_path / 'sub' / 'folded.pth'
    written = atomic_save({'state_dict': {'w': torch.ones(2)}}, target)
    assert written == str(target)
    loaded = load_checkpoint_file(target)
    torch.testing.assert_close(loaded['state_dict']['w'], torch.ones(2))
    assert sorted(os.listdir(target.parent)) == ['folded.pth']


def test_atomic_save_failing_write_leaves_nothing(tmp_path):
    target = tmp_path / 'folded.pth'
    big = {f'w{i}': torch.randn(64, 64) for i in range(8)}
    obj = {'state_dict': big, 'payload': _FailsWhilePickling()}
    with pytest.raises(RuntimeError, match='simulated failure'):
        atomic_save(obj, target)
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # no temp file left either


def test_atomic_save_failing_overwrite_keeps_the_old_file(good_checkpoint):
    before = good_checkpoint.read_bytes()
    with pytest.raises(RuntimeError, match='simulated failure'):
        atomic_save({'payload': _FailsWhilePickling()}, good_checkpoint,
                    overwrite=True)
    assert good_checkpoint.read_bytes() == before
    assert os.listdir(good_checkpoint.parent) == ['good.pth']


def test_atomic_save_refuses_to_overwrite(good_checkpoint):
    before = good_checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match='already exists') as info:
        atomic_save({'state_dict': {}}, good_checkpoint)
    assert str(good_checkpoint) in str(info.value)
    assert good_checkpoint.read_bytes() == before
    assert os.listdir(good_checkpoint.parent) == ['good.pth']


def test_atomic_save_overwrite_replaces(good_checkpoint):
    atomic_save({'state_dict': {'w': torch.zeros(1)}}, good_checkpoint,
                overwrite=True)
    loaded = load_checkpoint_file(good_checkpoint)
    torch.testing.assert_close(loaded['state_dict']['w'], torch.zeros(1))


def test_atomic_save_to_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match='is a directory'):
        atomic_save({}, tmp_path)
