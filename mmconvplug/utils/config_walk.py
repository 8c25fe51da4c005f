"""The one walker over nested configs (dicts, lists and tuples).

Configs are trees of dicts and lists: ``model.backbone.conv_cfg``,
``custom_hooks[0]``, ``model.roi_head.bbox_head[1]``. Every place that
looks for something in a config (conv types, ``conv_swap`` blocks, keypoint
heads, mmconvplug types) or rewrites one (a variant placed by ``conv_cfg``,
``Pretrained`` inits dropped, a deploy config's plain convs) uses these two
functions instead of a recursion of its own:

* :func:`walk_config` yields every value with its key path, parents first;
* :func:`map_config` returns a copy in which a function rewrote every dict,
  parents first (the function sees, and may replace, a dict before its
  values are visited).

Both are plain Python and need nothing of mmengine: a ``Config`` /
``ConfigDict`` is a dict; pass ``cfg.to_dict()`` for a plain copy.
:func:`config_types` names every ``type`` a config uses;
:func:`leaf_datasets` finds the datasets that read files inside dataset
wrappers.

Example:
    >>> cfg = dict(model=dict(type='M', layers=[dict(type='Conv')]))
    >>> [path for path, _ in walk_config(cfg)][-2:]
    ['model.layers[0]', 'model.layers[0].type']
    >>> sorted(config_types(cfg))
    ['Conv', 'M']
"""
from typing import Any, Callable, Iterator, Set, Tuple


def walk_config(node: Any, path: str = '') -> Iterator[Tuple[str, Any]]:
    """``(key path, value)`` for ``node`` and every value nested in it.

    Args:
        node: A config (or any part of one).
        path (str): The key path of ``node`` itself. Defaults to ''.

    Yields:
        tuple[str, Any]: ``('model.backbone.conv_cfg', {...})``,
        ``('custom_hooks[0]', {...})``; parents before their values.
    """
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_config(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from walk_config(value, f'{path}[{index}]')


def map_config(node: Any, rewrite: Callable[[dict], Any]) -> Any:
    """A copy of ``node`` in which ``rewrite`` replaced every dict.

    ``rewrite`` gets a shallow copy of each dict, parents first, and returns
    its replacement; the values of what it returns are visited next. Lists
    and tuples keep their type; other values are shared, not copied.

    Args:
        node: A config (plain dicts: pass ``cfg.to_dict()``).
        rewrite (Callable[[dict], Any]): ``dict -> replacement``.
    """
    if isinstance(node, dict):
        node = rewrite(dict(node))
        if isinstance(node, dict):
            return {key: map_config(value, rewrite)
                    for key, value in node.items()}
        return node
    if isinstance(node, (list, tuple)):
        return type(node)(map_config(value, rewrite) for value in node)
    return node


def type_name(value: Any) -> Any:
    """A config ``type`` as the registry name it stands for: a class's
    ``__name__``, ``'mmdet.SSDVGG'`` -> ``'SSDVGG'``; anything else as is."""
    if isinstance(value, type):
        return value.__name__
    return value.split('.')[-1] if isinstance(value, str) else value


def leaf_datasets(node: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    """``(key path, dataset config)`` of every dataset that reads files,
    inside ``dataset=`` (``RepeatDataset``, ``ClassBalancedDataset``...) and
    ``datasets=[...]`` (``ConcatDataset``) wrappers; the dicts themselves,
    not copies, so a caller may edit them."""
    if not isinstance(node, dict):
        return
    if node.get('dataset') is not None:
        yield from leaf_datasets(node['dataset'], f'{path}.dataset')
    elif node.get('datasets'):
        for index, each in enumerate(node['datasets']):
            yield from leaf_datasets(each, f'{path}.datasets[{index}]')
    else:
        yield path, node


def config_types(node: Any) -> Set[str]:
    """Every ``type`` name in ``node`` (see :func:`type_name`)."""
    found = set()
    for _, value in walk_config(node):
        if isinstance(value, dict):
            name = type_name(value.get('type'))
            if isinstance(name, str):
                found.add(name)
    return found
