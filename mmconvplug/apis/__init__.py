"""Config -> model -> checkpoint: the one plumbing layer, and the tools'
library functions.

Every entry point (fold and ONNX export, ``mmconvplug swap``, both model
benchmarks, the converter, the demo, ``tools/test.py``) builds models,
reads configs and checkpoints through these:

* :func:`init_model` (as mmdet's ``init_detector``), :func:`load_weights`,
  :func:`read_state_dict` (:mod:`.model`);
* :func:`load_config`, the scope rule :func:`config_scope`
  (:data:`DEFAULT_SCOPE`), :func:`plugin_type_names` (:mod:`.config`);
* the config walker :func:`walk_config` / :func:`map_config`
  (:mod:`mmconvplug.utils.config_walk`) and the default fold tolerance
  :data:`DEFAULT_FOLD_TOLERANCE` (:mod:`mmconvplug.fold.verify`), which
  live in the layers below because those layers use them too.

The tools: :func:`check_config` (:mod:`.config_checks`),
:func:`make_deploy_config` and :func:`export_folded_checkpoint`
(``tools/fold.py``), :func:`swap_reports_of_config` (``mmconvplug swap``),
:func:`run_test` and friends (``tools/test.py``).
"""
from mmconvplug.fold import DEFAULT_FOLD_TOLERANCE
from mmconvplug.utils.config_walk import config_types, map_config, walk_config

from .config import (
    DEFAULT_SCOPE,
    add_checkpoint_fit_hook,
    config_path,
    config_scope,
    has_checkpoint_fit_hook,
    imports_plugin,
    load_config,
    plugin_type_names,
    plugin_types,
    plugin_types_used,
)
from .config_checks import (
    MissingCustomImportsWarning,
    check_config,
    registered_conv_types,
)
from .deploy_config import make_deploy_config
from .export import FoldExport, export_folded_checkpoint
from .model import (
    LoadedCheckpoint,
    build_in_scope,
    init_model,
    load_weights,
    read_state_dict,
)
from .swap import has_conv_swap, swap_reports_of_config
from .test import (
    format_side_by_side,
    load_test_config,
    run_test,
    test_unfolded_and_folded,
    with_test_hooks,
)

__all__ = [
    'DEFAULT_FOLD_TOLERANCE', 'DEFAULT_SCOPE', 'FoldExport',
    'LoadedCheckpoint', 'MissingCustomImportsWarning',
    'add_checkpoint_fit_hook', 'build_in_scope', 'check_config',
    'config_path', 'config_scope', 'config_types', 'export_folded_checkpoint',
    'format_side_by_side', 'has_checkpoint_fit_hook', 'has_conv_swap',
    'imports_plugin', 'init_model', 'load_config', 'load_test_config',
    'load_weights', 'make_deploy_config', 'map_config', 'plugin_type_names',
    'plugin_types', 'plugin_types_used', 'read_state_dict',
    'registered_conv_types', 'run_test', 'swap_reports_of_config',
    'test_unfolded_and_folded', 'walk_config', 'with_test_hooks'
]
