"""Honour a ``conv_swap`` key in any model config built through ``MODELS``.

mmengine's Runner builds ``cfg.model`` with ``MODELS.build`` and only then
wraps it (DDP), builds the optimizer, initialises the weights and loads
``load_from`` / resumes. So the one place where a swap happens before all
of those, for every tool that builds models from configs (the Runner of
stock mmdet / mmseg ``tools/train.py`` and ``tools/test.py``, mmdet's
``init_detector``, mmseg's ``init_model``, ``MODELS.build`` in user code),
is ``MODELS.build`` itself.

:func:`install_build_hook` wraps the build function of mmengine's root
``MODELS`` registry and of every registry that inherited it (mmdet's,
mmseg's, ... ; registries created later inherit the wrapped one). The
wrapper is a no-op for a config without ``conv_swap``; for one with it, it
builds the config without the key, then calls
:func:`~mmconvplug.swap.swap_convs` on the result, which is returned (the
same object: no wrapper module, so no ``module.`` prefix in the state
dict). It is an import-time change of upstream behaviour, :data:`CHANGE`:
importing :mod:`mmconvplug.swap` installs it through
:func:`mmconvplug.compat.install_upstream_change`
(``custom_imports=dict(imports=['mmconvplug'])``), and ``mmconvplug info``
lists it with the other changes.
"""
import functools
from typing import Any, Callable, Iterator

from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS, Registry

from mmconvplug.compat import UpstreamChange

#: The config key of the swap (a dict or a list of dicts; None: no swap).
CONV_SWAP_KEY = 'conv_swap'


def _with_conv_swap(build_func: Callable) -> Callable:
    """``build_func`` that also applies a config's ``conv_swap``."""

    @functools.wraps(build_func)
    def build(cfg: Any, *args, **kwargs) -> Any:
        if not isinstance(cfg, (dict, Config)) or CONV_SWAP_KEY not in cfg:
            return build_func(cfg, *args, **kwargs)
        cfg = ConfigDict(cfg.to_dict() if isinstance(cfg, Config) else cfg)
        conv_swap = cfg.pop(CONV_SWAP_KEY)
        model = build_func(cfg, *args, **kwargs)
        if conv_swap is not None:
            from .swap_convs import swap_convs
            swap_convs(model, conv_swap)
        return model

    build.conv_swap_wrapped = build_func
    return build


def _registry_tree(root: Registry) -> Iterator[Registry]:
    yield root
    for child in root.children.values():
        yield from _registry_tree(child)


def install_build_hook(root: Registry = MODELS) -> None:
    """Make ``root`` and its descendants honour ``conv_swap`` (idempotent).

    Registries with a build function of their own (not inherited from
    ``root``) are left alone.
    """
    original = getattr(root.build_func, 'conv_swap_wrapped', root.build_func)
    wrapped = (root.build_func if hasattr(root.build_func, 'conv_swap_wrapped')
               else _with_conv_swap(original))
    for registry in _registry_tree(root):
        if registry.build_func is original:
            registry.build_func = wrapped


def build_hook_installed(registry: Registry = MODELS) -> bool:
    """True when ``registry`` honours ``conv_swap``."""
    return hasattr(registry.build_func, 'conv_swap_wrapped')


def describe_build_hook(root: Registry = MODELS) -> str:
    """Where ``MODELS.build`` honours ``conv_swap``, for ``mmconvplug
    info``: the scopes."""
    scopes = sorted({registry.scope for registry in _registry_tree(root)
                     if build_hook_installed(registry)})
    if not scopes:
        return 'NOT installed: import mmconvplug before building models'
    return (f'conv_swap honoured in scopes {", ".join(scopes)} (and every '
            'registry created later)')


#: The import-time change this module makes (see :mod:`mmconvplug.compat`).
CHANGE = UpstreamChange(
    kind='extension',
    name='conv_swap_build_hook',
    package='mmengine',
    versions='>=0.7.0,<=0.10.7',
    issue='https://github.com/open-mmlab/mmengine/blob/v0.10.7/mmengine/'
    'registry/registry.py',
    summary="MODELS.build (the root registry's build_func, inherited by "
    "mmdet's and mmseg's) honours a model config's conv_swap key: the "
    'one place every tool builds a model before init, load and DDP',
    apply=install_build_hook,
    state=describe_build_hook)
