"""``mmconvplug info``: the report users paste into bug reports."""
import subprocess
import sys

import mmcv
import mmdet
import torch

from mmconvplug.cli.info import registered_by_mmconvplug
from mmconvplug.compat import upstream_changes
from mmconvplug.configs_path import configs_root


def test_info_reports_versions_ops_and_registered_types():
    out = subprocess.run([sys.executable, '-m', 'mmconvplug', 'info'],
                         check=True, capture_output=True, text=True).stdout
    # Rows are '<label padded to 11> <value>'.
    lines = {line[:11].strip(): line[12:] for line in out.splitlines()}
    assert lines['torch'] == torch.__version__
    assert lines['mmcv'] == mmcv.__version__
    assert lines['mmdet'] == mmdet.__version__
    assert lines['mmcv ops'] == 'compiled'
    assert lines['cpu kernels'].startswith('loaded (mmconvplug_compose_')
    for conv_type in ('DOConv', 'RefConv', 'CondConv', 'SCConv', 'DWSConv'):
        assert conv_type in lines['MODELS'].split(', ')
    assert 'FoldHook' in lines['HOOKS'].split(', ')
    assert lines['configs'] == configs_root()
    changes = [line[12:] for line in out.splitlines()
               if line.startswith('upstream ')]
    for name in upstream_changes():
        assert any(line.startswith(name) for line in changes), (name, changes)


def test_registered_names_do_not_shadow_upstream():
    """Only our own classes are listed, and none reuses mmdet's ``SCNet``."""
    models = registered_by_mmconvplug()['MODELS']
    assert 'SCResNet' in models
    assert 'SCNet' not in models
