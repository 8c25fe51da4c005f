"""Testing an mmdet / mmseg checkpoint, folded by default (``tools/test.py``).

The config's scope (:func:`~mmconvplug.apis.config.config_scope`) picks
the library. :func:`with_test_hooks` adds a
:class:`~mmconvplug.engine.hooks.FoldHook` (unless the config has one) so
the model under test is folded and its outputs checked on the first batch,
and a ``CheckpointFitHook`` (unless the config has one) that refuses a
folded checkpoint with the training config (or the reverse) instead of
testing random weights, and names every tensor the checkpoint leaves
unfilled.
"""
import copy
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from mmconvplug.analysis import format_table
from mmconvplug.fold import DEFAULT_FOLD_TOLERANCE

from .config import add_checkpoint_fit_hook, config_scope, load_config

#: Libraries whose models ``tools/test.py`` tests.
SCOPES = ('mmdet', 'mmseg')


def scope_under_test(cfg: Config) -> str:
    """The config's scope (:func:`~mmconvplug.apis.config.config_scope`).

    Raises:
        ValueError: it is not one of :data:`SCOPES`.
    """
    scope = config_scope(cfg)
    if scope not in SCOPES:
        raise ValueError(
            f'default_scope={scope!r} in the config: tools/test.py tests '
            f'mmdet and mmseg models, so it must be one of {SCOPES}. Inherit '
            "an mmdet:: or mmseg:: base config, or set default_scope.")
    return scope


def _set_outputs(cfg: Config, out: Optional[str], show_dir: Optional[str],
                 scope: str) -> None:
    """--out / --show-dir, as mmdet's and mmseg's tools/test.py do them."""
    if show_dir:
        hooks = cfg.get('default_hooks') or {}
        if 'visualization' not in hooks:
            raise ValueError(
                '--show-dir needs default_hooks.visualization in the config '
                "(e.g. dict(type='DetVisualizationHook') for mmdet, "
                "dict(type='SegVisualizationHook') for mmseg).")
        hooks['visualization']['draw'] = True
        if scope == 'mmdet':
            hooks['visualization']['test_out_dir'] = osp.abspath(show_dir)
        else:
            cfg.visualizer['save_dir'] = osp.abspath(show_dir)
    if out and scope == 'mmdet' and not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out!r}: mmdet predictions are dumped as a '
                         'pickle; use a .pkl path.')
    if out and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True


def load_test_config(config: str,
                     checkpoint: str,
                     cfg_options: Optional[dict] = None,
                     work_dir: Optional[str] = None,
                     launcher: str = 'none',
                     out: Optional[str] = None,
                     show_dir: Optional[str] = None) -> Config:
    """Load ``config`` and apply the command line, as mmdet's test.py does.

    Args:
        config (str): Config file.
        checkpoint (str): Checkpoint to test (``load_from``).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): Defaults to the config's, else
            ``./work_dirs/<config name>``.
        launcher (str): Job launcher. Defaults to ``'none'``.
        out (str, optional): mmdet: a ``.pkl`` for the predictions; mmseg:
            a directory for the predicted maps.
        show_dir (str, optional): Directory for painted results.

    Raises:
        ValueError: a missing file, a config outside mmdet / mmseg, or an
            unusable ``out`` / ``show_dir``.
    """
    if not osp.isfile(config):
        raise ValueError(f'config={config!r} does not exist: pass the '
                         'path of a config file.')
    if not osp.isfile(checkpoint):
        raise ValueError(f'checkpoint={checkpoint!r} does not exist: pass '
                         'the path of a .pth file.')
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    cfg.load_from = checkpoint
    _set_outputs(cfg, out, show_dir, scope_under_test(cfg))
    return cfg


def with_test_hooks(cfg: Config, fold: bool, fuse_bn: bool = False,
                    tolerance: float = DEFAULT_FOLD_TOLERANCE) -> Config:
    """A copy of ``cfg`` with the checkpoint-fit check and (un)folding set."""
    cfg = copy.deepcopy(cfg)
    hooks = list(cfg.get('custom_hooks') or [])
    has_fold_hook = any(h.get('type') == 'FoldHook' for h in hooks)
    if not fold:
        hooks = [h for h in hooks if h.get('type') != 'FoldHook']
    elif not has_fold_hook:
        hooks.append(dict(type='FoldHook', fuse_bn=fuse_bn,
                          tolerance=tolerance))
    cfg.custom_hooks = hooks
    return add_checkpoint_fit_hook(cfg)


def run_test(cfg: Config, out: Optional[str] = None) -> Dict[str, float]:
    """Build a Runner from ``cfg`` in its scope and return its test metrics."""
    scope = scope_under_test(cfg)
    __import__(scope)
    init_default_scope(scope)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    if out and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    return runner.test()


def test_unfolded_and_folded(cfg: Config,
                             fuse_bn: bool = False,
                             tolerance: float = DEFAULT_FOLD_TOLERANCE,
                             out: Optional[str] = None) -> Dict[str, dict]:
    """Test as trained, then folded; ``{'unfolded': metrics, 'folded':
    metrics}``. Each run has its own work dir (and ``out``) under a name."""
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    metrics = {}
    for name, fold in (('unfolded', False), ('folded', True)):
        run_cfg = with_test_hooks(cfg, fold, fuse_bn, tolerance)
        run_cfg.work_dir = osp.join(cfg.work_dir, name)
        run_cfg.experiment_name = f'{name}_{stamp}'
        if out and scope_under_test(cfg) == 'mmseg':
            run_cfg.test_evaluator['output_dir'] = osp.join(out, name)
        run_out = None if not out else '{}_{}{}'.format(
            osp.splitext(out)[0], name, osp.splitext(out)[1])
        metrics[name] = run_test(run_cfg, run_out)
    return metrics


test_unfolded_and_folded.__test__ = False  # not a pytest test


def format_side_by_side(unfolded: Dict[str, float],
                        folded: Dict[str, float]) -> str:
    """The two runs' metrics in columns, with the folded - unfolded diff."""

    def fmt(value) -> str:
        return (f'{value:.4f}' if isinstance(value, (int, float)) else
                str(value))

    rows = []
    for key in sorted(set(unfolded) | set(folded)):
        a, b = unfolded.get(key), folded.get(key)
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        rows.append([key, fmt(a), fmt(b), f'{b - a:+.4f}' if numeric else ''])
    return format_table(['metric', 'unfolded', 'folded', 'diff'], rows,
                        plain=True)
