"""``mmconvplug benchmark train`` at a tiny size: the variant models start from
the plain weights exactly, the run writes its JSON. No timed assertions."""
import copy
import json

import pytest
import torch

from mmconvplug.benchmarks import train
from mmconvplug.benchmarks.models import variant_config
from mmconvplug.cli import main as cli_main
from mmconvplug.convs.base import is_conv_variant

# Batch 2: the tiny SSD's neck has BatchNorm on 1x1 maps.
TINY_SSD = train.TrainSpec('mmdet', 'mmconvplug::demo/ssd_r18_tiny_voc.py',
                           2, (96, 96), (2, (96, 96)), ('DOConv', ))


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_plain():
    """The tiny SSD's config, plain model and a fixed batch, built once."""
    cfg = train.load_config(TINY_SSD.config)
    plain = train.build_model(cfg)
    return cfg, plain, train.fixed_batch(plain, 'mmdet', 2, (64, 64), 20)


@pytest.mark.parametrize('variant', ['DOConv', 'RefConv', 'CondConv'])
def test_variant_from_plain_computes_the_plain_loss(tiny_plain, variant):
    cfg, plain, data = tiny_plain
    placed = train.build_model(variant_config(cfg, variant, 'mmdet'),
                               seed=1)
    model = train.variant_from_plain(plain, placed)
    swapped = [n for n, m in model.named_modules() if is_conv_variant(m)]
    assert swapped == [n for n, m in placed.named_modules()
                       if is_conv_variant(m)]
    assert not any(is_conv_variant(m) for m in plain.modules())
    losses = {}
    for name, net in (('plain', copy.deepcopy(plain)), ('variant', model)):
        torch.manual_seed(0)
        losses[name] = train.make_train_step(net, data)()
    assert losses['variant'] == pytest.approx(losses['plain'], rel=1e-5)


def test_variant_from_plain_needs_matching_names(tiny_plain):
    _, plain, _ = tiny_plain
    with pytest.raises(ValueError, match='places no conv variant'):
        train.variant_from_plain(plain, plain)


def test_train_benchmark_tiny_run_writes_json(tmp_path, monkeypatch,
                                              restore_threads, capsys):
    monkeypatch.setitem(train.MODEL_SPECS, 'tiny_ssd', TINY_SSD)
    out = tmp_path / 'train.json'
    assert cli_main(['benchmark', 'train', '--models', 'tiny_ssd',
                     '--repeats', '1', '--threads', '1', '--device', 'cpu',
                     '--size', '64', '64', '--json', str(out)]) == 0
    assert 'tiny_ssd' in capsys.readouterr().out
    report = json.loads(out.read_text())
    (row, ) = report['results']
    assert row['variant'] == 'DOConv' and row['device'] == 'cpu'
    assert row['batch'] == 2 and row['input_size'] == [64, 64]
    assert row['step0_rel_diff'] < 1e-5
    assert row['train_ratio'] > 0 and row['peak_mb'] > 0
    assert row['train_ratio_q1'] <= row['train_ratio'] <= \
        row['train_ratio_q3'] and row['repeats'] == 1
    assert row['params'] > row['params_plain']  # DO-Conv's D
    # Where the cost lies: the phases of both models, the compositions.
    for key in ('phase_s', 'phase_s_plain'):
        assert sorted(row[key]) == sorted(train.PHASES)
        assert all(seconds > 0 for seconds in row[key].values())
    assert row['compose_s'] > 0 and row['compose_share'] == pytest.approx(
        row['compose_s'] / row['train_s_plain'])


def test_a_step_records_its_phases_and_computes_the_same_loss(tiny_plain):
    cfg, plain, data = tiny_plain
    phases = []
    losses = []
    for record in (None, phases):
        net = copy.deepcopy(plain)
        torch.manual_seed(0)
        losses.append(train.make_train_step(net, data, phases=record)())
    assert losses[0] == losses[1]
    (forward, backward, optimizer), = phases
    assert forward > 0 and backward > 0 and optimizer > 0


def test_the_composition_call_composes_every_variant_layer(tiny_plain):
    cfg, plain, _ = tiny_plain
    assert train.composition_call(plain) is None
    for variant in ('DOConv', 'RefConv'):
        model = train.variant_from_plain(plain, train.build_model(
            variant_config(cfg, variant, 'mmdet')))
        compose = train.composition_call(model)
        layers = [m for m in model.modules() if is_conv_variant(m)]
        assert layers
        for layer in layers:
            for param in layer.parameters():
                param.grad = None
        compose()
        trainable = [p for layer in layers for p in layer.parameters()
                     if p.requires_grad and p is not getattr(layer, 'bias',
                                                             None)]
        assert trainable and all(p.grad is not None for p in trainable)
        # A frozen layer (mmdet's frozen_stages) composes forward only.
        layers[0].requires_grad_(False)
        compose = train.composition_call(model)
        compose()
        assert all(p.grad is None for p in layers[0].parameters())
        assert all(p.grad is not None for p in layers[1].parameters()
                   if p.requires_grad and p is not layers[1].bias)
    cond = train.variant_from_plain(plain, train.build_model(
        variant_config(cfg, 'CondConv', 'mmdet')))
    assert train.composition_call(cond) is None  # it mixes, per example


def test_compiled_train_steps_match_eager(tmp_path, monkeypatch,
                                          restore_threads, capsys):
    """``--compile aot_eager``: the plain and the DO-Conv model also run
    under torch.compile in the same rounds; the compiled first-step loss is
    the eager one (aot_eager traces the same ops), and the row carries the
    compiled figures beside eager."""
    monkeypatch.setitem(train.MODEL_SPECS, 'tiny_ssd', TINY_SSD)
    out = tmp_path / 'train.json'
    assert cli_main(['benchmark', 'train', '--models', 'tiny_ssd',
                     '--repeats', '1', '--threads', '1', '--device', 'cpu',
                     '--size', '64', '64', '--compile', 'aot_eager',
                     '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert "compiled with backend='aot_eager'" in printed
    report = json.loads(out.read_text())
    assert report['meta']['compile'] == 'aot_eager'
    (row, ) = report['results']
    assert row['compile'] == {'backend': 'aot_eager'}
    assert row['compiled_step0_rel_diff'] < 1e-5
    assert row['plain_compiled_step0_rel_diff'] < 1e-5
    for key in ('compiled_s', 'compiled_vs_eager', 'compile_first_step_s',
                'compiled_train_ratio', 'plain_compiled_s'):
        assert row[key] > 0, key
    assert row['compiled_train_ratio_q1'] <= row['compiled_train_ratio'] \
        <= row['compiled_train_ratio_q3']


def test_train_benchmark_rejects_unknown_variant(capsys):
    with pytest.raises(SystemExit):
        cli_main(['benchmark', 'train', '--variants', 'NoSuchConv'])
    assert 'not registered conv variants' in capsys.readouterr().err


def test_batch_config_takes_the_config_train_batch(tmp_path, monkeypatch,
                                                   restore_threads):
    """``--batch config``: each model at its config's own
    ``train_dataloader.batch_size``."""
    monkeypatch.setitem(train.MODEL_SPECS, 'tiny_ssd', TINY_SSD)
    expected = train.load_config(
        TINY_SSD.config).train_dataloader.batch_size
    assert expected != TINY_SSD.batch  # the option must change something
    out = tmp_path / 'train.json'
    assert cli_main(['benchmark', 'train', '--models', 'tiny_ssd',
                     '--repeats', '1', '--threads', '1', '--device', 'cpu',
                     '--size', '64', '64', '--batch', 'config',
                     '--json', str(out)]) == 0
    (row, ) = json.loads(out.read_text())['results']
    assert row['batch'] == expected


@pytest.mark.parametrize('value', ['0', 'two', '-3'])
def test_train_benchmark_rejects_a_bad_batch(capsys, value):
    with pytest.raises(SystemExit):
        cli_main(['benchmark', 'train', '--batch', value])
    assert "positive int or 'config'" in capsys.readouterr().err
