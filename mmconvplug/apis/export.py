"""Export a folded checkpoint and its deploy config (``tools/fold.py``).

1. build the training config's model and load the trained checkpoint
   strictly, after the checkpoint-fit check (:func:`~mmconvplug.apis.
   init_model`);
2. fold it with ``plain_conv_only=True``: every variant whose fold is a
   plain conv becomes one; the rest stay as trained and are reported;
3. write the deploy config (:func:`make_deploy_config`), build *its* model,
   load the folded weights into it with ``strict=True`` and compare outputs
   with the trained model (:func:`verify_fold`) -- nothing is written unless
   this round trip works;
4. write the checkpoint and the config, each atomically, never over an
   existing file. The checkpoint holds only ``state_dict`` and a ``meta`` of
   plain Python types (:func:`~mmconvplug.utils.checkpoint_io.plain_checkpoint`:
   the source ``meta``, e.g. ``dataset_meta``, plus what was folded), so
   plain ``torch.load(path, weights_only=True)`` -- stock mmdet / mmseg
   tools without the plugin -- reads it. Training state (``message_hub``,
   optimizer, schedulers, EMA) is dropped: it describes the unfolded
   parameters and the run, not the deployed model.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from mmconvplug.convs.base import conv_variants
from mmconvplug.fold import (
    DEFAULT_FOLD_TOLERANCE,
    FoldReport,
    FoldVerification,
    fold_model,
    verify_fold,
)
from mmconvplug.utils import atomic_save
from mmconvplug.utils.checkpoint_io import plain_checkpoint

from .config import ConfigLike, load_config, plugin_types_used
from .deploy_config import make_deploy_config
from .model import init_model, load_weights, read_state_dict


@dataclass
class FoldExport:
    """What :func:`export_folded_checkpoint` wrote and measured.

    ``dropped`` names what of the source checkpoint was left out: its
    training state (``message_hub``, ``optimizer``...) and any ``meta``
    entry that is not plain data.
    """

    checkpoint_path: str
    config_path: str
    report: FoldReport
    verification: FoldVerification
    plugin_types_left: Tuple[str, ...]
    dropped: Tuple[str, ...] = ()

    @property
    def stock_compatible(self) -> bool:
        """True when the deploy config needs nothing from mmconvplug."""
        return not self.plugin_types_left


def deploy_config_path(out_checkpoint: str) -> str:
    """``work/model_folded.pth`` -> ``work/model_folded.py``."""
    return osp.splitext(out_checkpoint)[0] + '.py'


def config_input_shape(cfg: Config) -> Tuple[int, int]:
    """A test-time input size: a fixed-size Resize of the test pipeline
    (SSD needs its 300x300), else 256x256."""
    dataloader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    dataset = dataloader.get('dataset', {}) if isinstance(dataloader, dict) else {}
    for step in dataset.get('pipeline', []) or []:
        if (step.get('type') == 'Resize' and not step.get('keep_ratio', True)
                and isinstance(step.get('scale'), (list, tuple))):
            width, height = step['scale']
            return int(height), int(width)
    return 256, 256


def _write_config(cfg: Config, path: str) -> None:
    if osp.lexists(path):
        raise FileExistsError(
            f'Refusing to write the deploy config {path!r}: the file already '
            'exists. Choose another OUT path or delete the file first.')

    def save_text(obj: Config, file) -> None:
        file.write(obj.pretty_text.encode('utf-8'))

    atomic_save(cfg, path, save_fn=save_text)


def export_folded_checkpoint(
        config: ConfigLike,
        checkpoint: str,
        out: str,
        cfg_options: Optional[dict] = None,
        input_shape: Optional[Sequence[int]] = None,
        tolerance: float = DEFAULT_FOLD_TOLERANCE) -> FoldExport:
    """Fold ``checkpoint`` (trained with ``config``) into ``out`` + ``out.py``.

    Raises:
        FileExistsError: ``out`` or its ``.py`` already exists.
        FoldCheckpointMismatchError: the checkpoint does not belong to the
            config's model (e.g. it is already folded).
        ValueError: the folded model differs from the trained one by more
            than ``tolerance`` (relative), or does not load into the deploy
            config's model.
    """
    out = osp.abspath(out)
    config_out = deploy_config_path(out)
    for path in (out, config_out):
        if osp.lexists(path):
            raise FileExistsError(
                f'Refusing to write {path!r}: the file already exists (it '
                'may be a training checkpoint or an earlier export). Choose '
                'another OUT path, or delete the file first.')
    cfg = load_config(config, cfg_options)
    loaded = read_state_dict(checkpoint)
    trained = init_model(cfg)
    load_weights(trained, loaded)
    folded, report = fold_model(
        trained, return_report=True, plain_conv_only=True)

    deploy_cfg = make_deploy_config(cfg, report, conv_variants())
    deploy_model = init_model(deploy_cfg)
    folded_state = folded.state_dict()
    try:
        deploy_model.load_state_dict(folded_state, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f'The folded weights do not load strictly into the model of the '
            f'deploy config made from {config!r}: {error}. This config '
            'builds layers that fold_model cannot reproduce from conv_cfg '
            'alone; nothing was written.') from error

    height, width = input_shape or config_input_shape(cfg)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(1, 3, height, width, generator=generator)
    verification = verify_fold(trained, deploy_model, inputs)
    if not verification.within(tolerance):
        raise ValueError(
            f'The deploy model differs from the trained one by a relative '
            f'error of {verification.max_rel_error:.3g}, above '
            f'tolerance={tolerance:g}; nothing was written. Check the fold '
            'of the conv variants with mmconvplug.verify_fold.')

    ckpt = loaded.checkpoint
    wrapped = loaded.layout.holder is not None  # else a bare state dict
    meta = dict(ckpt.get('meta') or {}) if wrapped else {}
    meta['mmconvplug_fold'] = dict(
        source_checkpoint=osp.basename(checkpoint),
        folded_layers=len(report.folded),
        kept_layers=[f'{k.name} ({k.type})' for k in report.kept],
        max_rel_error=float(verification.max_rel_error))
    exported, dropped_meta = plain_checkpoint(folded_state, meta)
    dropped = tuple(k for k in ckpt if wrapped and k not in (
        'meta', loaded.layout.holder)) + tuple(dropped_meta)
    atomic_save(exported, out)
    try:
        _write_config(deploy_cfg, config_out)
    except BaseException:
        os.unlink(out)  # never leave a checkpoint without its config
        raise
    return FoldExport(out, config_out, report, verification,
                      tuple(sorted(plugin_types_used(deploy_cfg))), dropped)

