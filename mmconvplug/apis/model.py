"""Config -> model -> checkpoint: how every mmconvplug tool builds a model.

:func:`init_model` is mmdet's ``init_detector`` / mmseg's ``init_model``
for any config: the model built as mmengine's ``Runner`` builds it (same
scope rule, :func:`~mmconvplug.apis.config.config_scope`), SyncBN reverted
to BN (one process), optionally its weights initialised, a checkpoint
loaded after the checkpoint-fit check, on ``device``, in eval mode. The
fold and ONNX exports, ``mmconvplug swap``, both model benchmarks and the
converter use it.

:func:`read_state_dict` is the one reader of weights out of a checkpoint
file: ``weights_only=True`` loading
(:func:`~mmconvplug.utils.load_checkpoint_file`), bare /
``state_dict``-keyed / ``model``-keyed layouts, a DDP ``module.`` prefix
stripped and reported (:func:`~mmconvplug.utils.checkpoint_layout.
read_checkpoint_layout`).
"""
import copy
import importlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from mmconvplug.engine.checkpoint_fit import check_checkpoint_fit
from mmconvplug.utils import load_checkpoint_file
from mmconvplug.utils.checkpoint_layout import (
    CheckpointLayout,
    read_checkpoint_layout,
)

from .config import DEFAULT_SCOPE, ConfigLike, config_scope, load_config

CheckpointLike = Union[str, 'os.PathLike[str]', Mapping]


@dataclass
class LoadedCheckpoint:
    """A checkpoint read by :func:`read_state_dict`.

    Args:
        checkpoint (Any): What ``torch.load`` returned (``meta``, training
            state and all).
        state_dict (Mapping): The weights (DDP prefix stripped).
        layout (CheckpointLayout): Where they were found.
        source (str): The file, or ``'the checkpoint'``.
    """

    checkpoint: Any
    state_dict: Mapping
    layout: CheckpointLayout
    source: str


def read_state_dict(checkpoint: CheckpointLike) -> LoadedCheckpoint:
    """The weights of a checkpoint file (or of what ``torch.load`` gave).

    A stripped ``module.`` prefix, and weights found under ``'model'``
    (where mmengine never looks), are logged.

    Raises:
        FileNotFoundError, UntrustedCheckpointError, CorruptCheckpointError:
            see :func:`~mmconvplug.utils.load_checkpoint_file`.
        ValueError: no state dict of tensors in it; the message names the
            file and what it holds.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.fspath(checkpoint)
        loaded = load_checkpoint_file(checkpoint)
    else:
        source, loaded = 'the checkpoint', checkpoint
    try:
        state_dict, layout = read_checkpoint_layout(loaded)
    except ValueError as error:
        raise ValueError(f'{source}: {error}') from None
    if layout.stripped_prefix or layout.holder == 'model':
        print_log(f'{source}: read a {layout}', logger='current')
    return LoadedCheckpoint(loaded, state_dict, layout, source)


def load_weights(model: nn.Module,
                 checkpoint: Union[CheckpointLike, LoadedCheckpoint],
                 strict: bool = True) -> LoadedCheckpoint:
    """Check that ``checkpoint`` fits ``model``, then load it.

    The check is the checkpoint-fit engine's
    (:func:`~mmconvplug.engine.checkpoint_fit.check_checkpoint_fit`): a
    folded checkpoint for a model that builds the variants (or the reverse)
    raises, with the fix; with ``strict`` (the default) so does a missing,
    unused or misshapen tensor, before anything is loaded, and the load is
    ``load_state_dict(strict=True)``.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint: A path, what ``torch.load`` gave, or a
            :class:`LoadedCheckpoint`.
        strict (bool): See above; False reports and loads what fits.

    Returns:
        LoadedCheckpoint: What was read.
    """
    if not isinstance(checkpoint, LoadedCheckpoint):
        checkpoint = read_state_dict(checkpoint)
    check_checkpoint_fit(model, checkpoint.state_dict,
                         source=checkpoint.source, strict=strict)
    model.load_state_dict(checkpoint.state_dict, strict=strict)
    return checkpoint


def build_in_scope(cfg: Any) -> nn.Module:
    """``MODELS.build(cfg.model)`` in ``cfg``'s scope (its library
    imported), as the Runner does; no weights initialised or loaded."""
    scope = config_scope(cfg)
    if scope != DEFAULT_SCOPE:
        importlib.import_module(scope)
    init_default_scope(scope)
    return MODELS.build(copy.deepcopy(cfg.model))


def init_model(config: ConfigLike,
               checkpoint: Optional[CheckpointLike] = None,
               cfg_options: Optional[dict] = None,
               device: Union[str, torch.device] = 'cpu',
               strict: bool = True,
               init_weights: bool = False) -> nn.Module:
    """Build a config's model and load a checkpoint into it.

    Args:
        config (str | PathLike | Config): A config file, a
            ``<package>::<path>`` name or a ``Config``
            (:func:`~mmconvplug.apis.config.load_config`).
        checkpoint (str | PathLike | Mapping, optional): A checkpoint file
            (read weights-only), or what ``torch.load`` gave. Defaults to
            None: the model keeps its initial weights.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        device (str | torch.device): Where the model goes. Defaults to
            ``'cpu'``.
        strict (bool): As :func:`load_weights`. Defaults to True.
        init_weights (bool): Call ``model.init_weights()`` (what the Runner
            does before training: ``init_cfg`` inits, ``Pretrained``
            included) before loading. Defaults to False.

    Returns:
        nn.Module: The model in eval mode, with its config as ``model.cfg``
        (as mmdet's ``init_detector``) and the checkpoint's ``meta``
        ``dataset_meta`` as ``model.dataset_meta`` when there is one.

    Raises:
        FileNotFoundError: the config or the checkpoint does not exist.
        FoldCheckpointMismatchError, IncompatibleKeysError: the checkpoint
            does not fit (see :func:`load_weights`).
    """
    cfg = load_config(config, cfg_options)
    model = revert_sync_batchnorm(build_in_scope(cfg))
    if init_weights:
        model.init_weights()
    if checkpoint is not None:
        loaded = load_weights(model, checkpoint, strict=strict)
        meta = (loaded.checkpoint.get('meta')
                if loaded.layout.holder is not None else None)
        if isinstance(meta, Mapping) and meta.get('dataset_meta'):
            model.dataset_meta = meta['dataset_meta']
    model.cfg = cfg
    model.to(device)
    model.eval()  # (mmdet's and mmseg's ResNet.train return None)
    return model

