"""The demo's outputs: the table, ``demo.png`` and ``results.json``."""
import json
import os.path as osp
from typing import List

from mmconvplug.analysis import format_table


def format_results(records: List[dict], metric_name: str) -> str:
    """One row per variant: parameters, metric unfolded / folded, fold
    error, inference time and its ratio to the first variant's fold."""
    header = ['variant', 'trainable params', 'deployed params',
              f'{metric_name} unfolded', 'folded', 'max |out diff|',
              'ms unfolded', 'ms folded', 'folded / baseline']
    rows = [[
        r['variant'], f'{r["trainable_params"]:,}',
        f'{r["deployed_params"]:,}', f'{r["metric"]:.1f}',
        f'{r["metric_folded"]:.1f}', f'{r["fold_max_abs_diff"]:.1e}',
        f'{r["ms_unfolded"]:.1f}', f'{r["ms_folded"]:.1f}',
        f'{r["folded_vs_baseline"]:.2f}x'
    ] for r in records]
    return format_table(header, rows)


def plot_results(records: List[dict], metric_name: str, path: str) -> None:
    """Loss curves, metric unfolded vs folded, latency (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in records:
        loss = np.asarray(r['losses'])
        k = max(1, len(loss) // 30)
        smooth = np.convolve(loss, np.ones(k) / k, mode='valid')
        axes[0].plot(np.arange(len(smooth)) + k, smooth, label=r['variant'])
    axes[0].set(title='training loss (moving average)', xlabel='iteration',
                ylabel='loss')
    axes[0].legend()
    x = np.arange(len(records))
    names = [r['variant'] for r in records]
    for axis, key, title in (
            (axes[1], 'metric', f'{metric_name} on the tiny val set'),
            (axes[2], 'ms', 'inference, batch 1 (ms, median)')):
        unfolded = [r[key if key == 'metric' else 'ms_unfolded']
                    for r in records]
        folded = [r['metric_folded' if key == 'metric' else 'ms_folded']
                  for r in records]
        axis.bar(x - 0.2, unfolded, 0.4, label='trained (unfolded)')
        axis.bar(x + 0.2, folded, 0.4, label='folded')
        axis.set(title=title, xticks=x, xticklabels=names)
        axis.legend(loc='lower center', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(summary: dict, out: str) -> str:
    """Write ``summary`` to ``<out>/results.json``; return the path."""
    path = osp.join(out, 'results.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=1)
    return path
