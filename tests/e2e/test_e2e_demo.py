"""`make demo` in a reduced setting: the three SSD variants really learn on
tiny VOC (mAP well above chance), fold exactly, and the table, figure and
results.json are written."""
import json
import os.path as osp
import subprocess
import sys

import pytest
from e2e_tiny_runs import REPO

pytestmark = pytest.mark.slow

#: The reduced demo below must reach at least this VOC mAP (%) for every
#: variant; random boxes score ~0. The full demo reaches far more (README).
MAP_FLOOR = 40.0


def test_demo_reduced_learns_folds_and_reports(tmp_path):
    out = tmp_path / 'demo'
    cmd = [sys.executable, osp.join(REPO, 'tools/demo.py'), '--out', str(out),
           '--data-root', str(tmp_path / 'data'), '--iters', '60',
           '--num-train', '64', '--num-val', '16', '--timing-rounds', '2']
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert 'trainable params' in run.stdout and 'folded / baseline' in \
        run.stdout
    results = json.load(open(out / 'results.json'))
    assert [v['variant'] for v in results['variants']] == [
        'baseline', 'doconv', 'refconv'
    ]
    assert osp.getsize(out / 'demo.png') > 10_000
    baseline = results['variants'][0]
    for v in results['variants']:
        assert v['metric'] >= MAP_FLOOR, (v['variant'], v['metric'])
        # folding is exact: same predictions, same mAP, plain-conv size
        assert v['metric_folded'] == pytest.approx(v['metric'], abs=0.5)
        assert v['fold_max_abs_diff'] < 1e-3
        assert v['deployed_params'] == baseline['deployed_params']
        assert v['losses'][-1] < v['losses'][0]
    assert results['variants'][1]['trainable_params'] > \
        baseline['trainable_params']
