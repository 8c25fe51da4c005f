"""Where mmconvplug's configs are: the one place that knows.

An installed wheel ships them inside the package, as mmdet and mmseg ship
theirs (``mmconvplug/.mim/configs``, written by ``setup.py``'s ``build_py``).
An editable checkout has no ``.mim``: its configs are the repository's
``configs/``. Nothing else in the package looks for files next to its own
source.

Inside the config tree ``_base_`` paths are relative to each file and the
stock bases are ``mmdet::`` / ``mmseg::`` names, so a config loads the same
from either place.
"""
import os.path as osp
from typing import List

_PACKAGE = osp.dirname(osp.abspath(__file__))
#: The configs inside an installed wheel (mmdet's ``.mim`` convention).
PACKAGED_CONFIGS = osp.join(_PACKAGE, '.mim', 'configs')
#: The configs of an editable checkout: ``<repo>/configs``.
CHECKOUT_CONFIGS = osp.join(osp.dirname(_PACKAGE), 'configs')


def configs_root() -> str:
    """The absolute path of the configs folder.

    Returns:
        str: ``mmconvplug/.mim/configs`` when the package was installed
        from a wheel, else the checkout's ``configs/``.

    Raises:
        FileNotFoundError: neither exists (a broken install).
    """
    for root in (PACKAGED_CONFIGS, CHECKOUT_CONFIGS):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(
        f'mmconvplug: no configs at {PACKAGED_CONFIGS} (installed wheel) or '
        f'{CHECKOUT_CONFIGS} (editable checkout); reinstall the package '
        '(pip install .) so the wheel ships its configs.')


def config_file(relative: str) -> str:
    """The absolute path of one config, e.g. ``'demo/ssd_r18_tiny_voc.py'``.

    Args:
        relative (str): Path under the configs folder.

    Raises:
        FileNotFoundError: the config is not there; names where it looked.
    """
    path = osp.join(configs_root(), relative)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'mmconvplug has no config {relative!r} under {configs_root()}; '
            '`mmconvplug configs` lists the ones it has.')
    return path


def list_configs() -> List[str]:
    """Absolute paths of every config (``*.py`` except ``_base_`` parts),
    sorted."""
    import glob
    root = configs_root()
    paths = glob.glob(osp.join(root, '**', '*.py'), recursive=True)
    return sorted(p for p in paths
                  if '_base_' not in osp.relpath(p, root).split(osp.sep))
