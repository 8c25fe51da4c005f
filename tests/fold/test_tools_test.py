"""tools/test.py: folded metric == unfolded metric on tiny real datasets,
and checkpoint mix-ups stop with the fix."""
import re

import pytest
from fold_runner_helpers import (
    load_tool,
    make_data,
    save_random_checkpoint,
    tiny_cfg,
    variant_conv_cfg,
)


def compared_metrics(printed: str) -> dict:
    """``{metric: (unfolded, folded)}`` from the --compare table."""
    rows = {}
    for line in printed.splitlines():
        match = re.match(r'^(\S+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+[+-][\d.]+$',
                         line.strip())
        if match:
            rows[match[1]] = (float(match[2]), float(match[3]))
    return rows


def prepared(tmp_path, which):
    data_root = make_data(str(tmp_path / 'data'), which)
    # the complexity log (timed forwards, FLOPs) is covered by the hook test
    cfg = tiny_cfg(which, data_root, str(tmp_path / 'work'),
                   variant_conv_cfg(), custom_hooks=[
                       dict(type='FoldHook', log_complexity=False)])
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    return config, save_random_checkpoint(cfg, str(tmp_path / 'model.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('which, metric', [('voc', 'pascal_voc/mAP'),
                                           ('cityscapes', 'mIoU')])
def test_compare_gives_equal_metrics(tmp_path, capsys, which, metric):
    config, ckpt = prepared(tmp_path, which)
    rc = load_tool('test').main(
        [config, ckpt, '--compare', '--work-dir', str(tmp_path / 'test')])
    assert rc == 0
    rows = compared_metrics(capsys.readouterr().out)
    unfolded, folded = rows[metric]
    assert folded == pytest.approx(unfolded, abs=0.1)


@pytest.mark.slow
def test_folded_checkpoint_with_training_config_is_refused(tmp_path, capsys):
    config, ckpt = prepared(tmp_path, 'cityscapes')
    out = str(tmp_path / 'folded.pth')
    assert load_tool('fold').main(
        [config, ckpt, out, '--shape', '64', '128']) == 0
    capsys.readouterr()
    rc = load_tool('test').main([config, out, '--work-dir',
                                 str(tmp_path / 'refused')])
    assert rc == 2
    err = capsys.readouterr().err
    assert 'plain (folded) conv weights' in err and 'deploy config' in err
    # the reverse (trained checkpoint, deploy config) goes through the same
    # CheckpointFitHook; its message is tested in test_checkpoint_guard.py


def test_bad_scope_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / 'cfg.py'
    config.write_text("default_scope = 'mmpretrain'\nmodel = dict()\n")
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    assert load_tool('test').main([str(config), str(ckpt)]) == 2
    assert "must be one of ('mmdet', 'mmseg')" in capsys.readouterr().err


@pytest.mark.slow
def test_metrics_are_printed_even_when_the_config_hides_logs(tmp_path, capsys):
    config, ckpt = prepared(tmp_path, 'cityscapes')
    rc = load_tool('test').main([
        config, ckpt, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
        'log_level=WARNING'
    ])
    assert rc == 0
    assert re.search(r'^metrics: .*mIoU: [\d.]+', capsys.readouterr().out,
                     re.MULTILINE)
