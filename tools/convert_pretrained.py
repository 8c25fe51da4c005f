"""Convert a plain pretrained checkpoint into the init of a variant model.

    python tools/convert_pretrained.py IN OUT --variant doconv|refconv|condconv
        [--config CFG]

Each plain conv kernel becomes the variant layer that computes exactly the
same function (DO-Conv: W = kernel, D at identity; RefConv: basis = kernel;
CondConv: experts from the kernel), so fine-tuning starts from the
pretrained network. IN may be a bare state dict, or hold it under
``state_dict`` (mmengine) or ``model`` (detectron2, many training scripts);
a DDP ``module.`` prefix is stripped, as mmengine's loader does. OUT holds
the converted weights under ``state_dict`` (where mmengine's ``Pretrained``
init reads them); non-conv keys (norms, heads) are kept, ``meta`` and other
top-level entries as plain data; training state (``message_hub``,
``optimizer``...) is dropped, so plain ``torch.load(weights_only=True)``
reads OUT without mmconvplug. Every line printed, and every error, names the
layout found in IN. With ``--config`` only the convs that are variants in
that config's model are converted, with their hyper-parameters; without it
every 4-d conv kernel is. OUT must not exist: the tool never overwrites.
Point the variant config's ``init_cfg=dict(type='Pretrained',
checkpoint=OUT)`` at the result.
"""
import sys
from typing import List, Optional

from mmconvplug.cli import convert as command
from mmconvplug.cli import standalone_main


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main(command, argv)


if __name__ == '__main__':
    sys.exit(main())
