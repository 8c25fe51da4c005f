"""``tools/test.py`` refuses a checkpoint that carries code, and runs none.

The checkpoint holds real weights for the tiny segmenter plus one pickled
``os.system('touch SENTINEL')``. Loading it with ``weights_only=False``
would create the sentinel file; the tool must stop with
``UntrustedCheckpointError`` naming the file and the refused global, and
the sentinel must not exist afterwards. (The same refusal through a
Runner's ``load_from`` and ``mmengine.runner.load_checkpoint`` is tested in
``test_robustness_checkpoint_io.py``.)
"""
import os
import subprocess
import sys

import pytest
import torch
from robustness_tiny_seg import REPO, TEST, child_env, make_data, write_config

pytestmark = pytest.mark.slow


class _CreatesSentinel:

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f'touch {self.sentinel}', ))


def test_tools_test_refuses_code_in_checkpoint(tmp_path):
    data_root = make_data(str(tmp_path / 'data'), num_train=2, num_val=2)
    config = write_config(str(tmp_path / 'cfg.py'), data_root)
    sentinel = tmp_path / 'PAYLOAD_RAN'
    checkpoint = tmp_path / 'model_from_the_internet.pth'
    torch.save({'meta': {}, 'state_dict': {},
                'payload': _CreatesSentinel(sentinel)}, checkpoint)

    result = subprocess.run(
        [sys.executable, TEST, config, str(checkpoint),
         '--work-dir', str(tmp_path / 'work')],
        cwd=REPO, env=child_env(), capture_output=True, text=True,
        timeout=240)

    assert result.returncode != 0
    assert f"Refused to load checkpoint '{checkpoint}'" in result.stderr
    assert 'posix.system' in result.stderr
    assert not sentinel.exists()
