"""mmcv's compiled ops load, and the set-up's wheel names the torch it was
built for (``mmconvplug/utils/mmcv_ops.py``).

The mismatch itself (a wheel built for another torch) needs two torch builds;
`make test-torch` creates the second environment, and the message it gives is
recorded in docs/compatibility.md.
"""
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from mmconvplug.utils.mmcv_ops import mmcv_built_for, mmcv_ops_problem

ROOT = Path(__file__).resolve().parents[1]


def _installed_from_setup_cache() -> bool:
    origin = metadata.distribution('mmcv').read_text('direct_url.json')
    return bool(origin) and '/mmcv-2.1.0/torch' in json.loads(origin)['url']


def test_mmcv_ops_load_here():
    assert mmcv_ops_problem() is None


@pytest.mark.skipif(not _installed_from_setup_cache(),
                    reason='mmcv was not installed by scripts/setup.sh')
def test_setup_wheel_names_this_torch():
    built = mmcv_built_for()
    assert built is not None
    assert built.startswith(torch.__version__ + ' ')
    assert ('cudaops' if torch.cuda.is_available() else 'cpuops') in built


def test_diagnosis_runs_as_a_script_before_install():
    """scripts/setup.sh runs the file itself (mmconvplug not importable)."""
    done = subprocess.run(
        [sys.executable, '-I', str(ROOT / 'mmconvplug/utils/mmcv_ops.py')],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'mmcv ops: ok'
