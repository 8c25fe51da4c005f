"""Names removed or renamed after 0.2.0 fail where they are used, naming
the replacement (CHANGELOG.md lists each one)."""
import importlib

import pytest
from mmengine.registry import HOOKS

from mmconvplug.utils.removed import RemovedAPIError


@pytest.mark.parametrize('module,name,replacement', [
    ('mmconvplug.engine.checkpoint_keys', 'checkpoint_keys_strictness',
     "CheckpointFitHook(strict=True)"),
    ('mmconvplug.engine.checkpoint_keys', 'set_strict_checkpoint_keys',
     "type='Pretrained', ..., strict=True"),
    ('mmconvplug.engine.checkpoint_keys', 'mark_strict_model',
     'strict_pretrained_inits'),
    ('mmconvplug.engine.checkpoint_keys', 'strict_checkpoint_keys',
     'strictness is an argument'),
    ('mmconvplug.engine.checkpoint_keys', 'check_checkpoint_keys',
     'mmconvplug.engine.checkpoint_fit'),
    ('mmconvplug.engine.hooks', 'CheckpointKeysHook', 'CheckpointFitHook'),
    ('mmconvplug.engine.hooks', 'CheckpointGuardHook', 'CheckpointFitHook'),
    ('mmconvplug.fold', 'check_checkpoint_matches_model',
     'mmconvplug.engine.checkpoint_fit.check_checkpoint_matches_model'),
    ('mmconvplug.fold', 'FoldCheckpointMismatchError',
     'mmconvplug.engine.checkpoint_fit.FoldCheckpointMismatchError'),
    ('mmconvplug.utils', 'check_config', 'mmconvplug.apis.check_config'),
    ('mmconvplug.utils', 'registered_conv_types',
     'mmconvplug.apis.registered_conv_types'),
    ('mmconvplug.compat', 'describe_fixes', 'describe_changes'),
    ('mmconvplug.convert', 'split_checkpoint',
     'mmconvplug.apis.read_state_dict'),
])
def test_removed_name_names_its_replacement(module, name, replacement):
    with pytest.raises(RemovedAPIError) as error:
        exec(f'from {module} import {name}', {})
    assert replacement in str(error.value)
    assert 'CHANGELOG.md' in str(error.value)
    with pytest.raises(ImportError, match=name):
        getattr(importlib.import_module(module), name)


def test_other_unknown_names_are_plain_attribute_errors():
    import mmconvplug.fold
    assert not hasattr(mmconvplug.fold, 'no_such_name')


@pytest.mark.parametrize('old', ['CheckpointKeysHook', 'CheckpointGuardHook'])
def test_removed_hook_types_in_configs_name_the_new_hook(old):
    with pytest.raises(RemovedAPIError,
                       match="type='CheckpointFitHook'") as error:
        HOOKS.build(dict(type=old, strict=True))
    assert old in str(error.value)
