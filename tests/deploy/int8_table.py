"""The INT8 table of docs/deploy_int8.md: plain vs DO-Conv vs RefConv, tiny
SSD and DeepLabv3+, trained with one recipe (deploy_trained_models.py),
exported and quantized by ``mmconvplug export --eval --int8``.

    python tests/deploy/int8_table.py WORK_DIR

Prints the Markdown tables (metrics, then the weight ranges against plain).
"""
import json
import os.path as osp
import statistics
import sys

from deploy_trained_models import CASES, train_case  # noqa: E402

from mmconvplug.apis import init_model
from mmconvplug.cli import export as export_command
from mmconvplug.cli import standalone_main
from mmconvplug.deploy.quantize import (
    compare_weight_ranges,
    weight_range_table,
)
from mmconvplug.fold import fold_model

VARIANTS = {'plain': dict(type='Conv2d'), 'DO-Conv': dict(type='DOConv'),
            'RefConv': dict(type='RefConv')}


def main(work_dir: str) -> None:
    rows, ranges = [], []
    for case in ('ssd', 'deeplabv3plus'):
        metric = CASES[case].metric
        models = {}
        for variant, conv_cfg in VARIANTS.items():
            root = osp.join(work_dir, case, variant)
            config, checkpoint, _ = train_case(case, root, conv_cfg)
            out = osp.join(root, 'model.onnx')
            assert standalone_main(export_command, [
                config, checkpoint, out, '--eval', '--int8']) == 0
            result = json.load(open(osp.join(root, 'model.eval.json')))
            fp32 = result['backends']['onnxruntime']['metrics'][metric]
            int8 = result['backends']['onnxruntime-int8']['metrics'][metric]
            folded = fold_model(init_model(config, checkpoint))
            models[variant] = folded
            spreads = [r.spread for r in weight_range_table(folded)]
            rows.append(f'| {case} | {variant} | {fp32:.4g} | {int8:.4g} | '
                        f'{fp32 - int8:+.4g} | '
                        f'{statistics.median(spreads):.2f} / '
                        f'{max(spreads):.2f} |')
        for variant in ('DO-Conv', 'RefConv'):
            ranges.append(f'\n{case}: plain vs {variant}\n\n' +
                          compare_weight_ranges(models['plain'],
                                                models[variant],
                                                ('plain', variant),
                                                markdown=True))
    print('| model | convs | fp32 | INT8 | drop | channel spread, '
          'median / max over layers |')
    print('| --- | --- | --- | --- | --- | --- |')
    print('\n'.join(rows))
    print('\n'.join(ranges))


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    main(sys.argv[1])
