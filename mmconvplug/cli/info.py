"""``mmconvplug info``: what to paste into a bug report.

Versions (Python, torch, mmengine, mmcv, mmdet, mmseg), whether mmcv's ops
are compiled, whether the fused CPU kernels load (built on first use:
:mod:`mmconvplug.convs.cpu_kernels`), CUDA, the types mmconvplug registers,
the conv variants and every import-time change it makes to upstream
behaviour (one ``upstream`` line each:
:data:`mmconvplug.compat.UPSTREAM_CHANGES`).
"""
import argparse
import platform
from typing import Dict, List

DESCRIPTION = """versions, mmcv ops, CUDA, registered types and patches

What to paste into a bug report."""


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception as exc:  # report, never crash the report
        return f'not importable ({type(exc).__name__}: {exc})'
    return getattr(module, '__version__', 'unknown')


def _mmcv_ops() -> str:
    try:
        from mmcv.ops import nms, roi_align  # noqa: F401
    except Exception as exc:
        return (f'NOT compiled ({exc}); rebuild: pip uninstall -y mmcv && '
                'pip install --no-build-isolation mmcv==2.1.0')
    return 'compiled'


def _cpu_kernels() -> str:
    import warnings

    from mmconvplug.convs import cpu_kernels
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the status line says it
        cpu_kernels.load_kernels()
    return cpu_kernels.kernels_status()


def _configs_root() -> str:
    from mmconvplug.configs_path import configs_root
    try:
        return configs_root()
    except FileNotFoundError as error:  # report, never crash the report
        return f'missing ({error})'


def registered_by_mmconvplug() -> Dict[str, List[str]]:
    """Names this package adds to mmengine's root registries, by registry
    (:func:`mmconvplug.apis.plugin_types`)."""
    import mmconvplug  # noqa: F401  (registers everything)
    from mmconvplug.apis import plugin_types
    return plugin_types()


def conv_variant_summary() -> str:
    """Every registered conv variant (the contract's query), with whether
    it folds and whether it builds from a plain conv."""
    import mmconvplug  # noqa: F401  (registers everything)
    from mmconvplug.convs.base import conv_variants
    parts = []
    for name, cls in conv_variants().items():
        traits = ['foldable' if cls.foldable else 'not foldable']
        if not getattr(cls, 'from_conv_unsupported_reason', ''):
            traits.append('from_conv')
        parts.append(f'{name} ({", ".join(traits)})')
    return ', '.join(parts)


def info_lines(short: bool = False) -> List[str]:
    import torch
    versions = {
        'mmconvplug': _version('mmconvplug'),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'mmengine': _version('mmengine'),
        'mmcv': _version('mmcv'),
        'mmdet': _version('mmdet'),
        'mmseg': _version('mmseg'),
    }
    if short:
        return [', '.join(f'{k} {v}' for k, v in versions.items())]
    lines = [f'{k:<11} {v}' for k, v in versions.items()]
    lines.append(f'{"mmcv ops":<11} {_mmcv_ops()}')
    lines.append(f'{"cpu kernels":<11} {_cpu_kernels()}')
    cuda = torch.cuda.is_available()
    lines.append(f'{"CUDA":<11} ' + (
        f'available ({torch.version.cuda}, {torch.cuda.get_device_name(0)})'
        if cuda else 'not available'))
    lines.append(f'{"platform":<11} {platform.platform()}')
    lines.append(f'{"configs":<11} {_configs_root()}')
    for reg_name, names in registered_by_mmconvplug().items():
        lines.append(f'{reg_name:<11} {", ".join(names)}')
    lines.append(f'{"variants":<11} {conv_variant_summary()}')
    from mmconvplug.compat import describe_changes
    lines.extend(f'{"upstream":<11} {line}' for line in describe_changes())
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``info``'s options."""
    parser.add_argument('--short', action='store_true', help='one line')


def run(args: argparse.Namespace,
        parser: argparse.ArgumentParser) -> int:
    """Print the report."""
    print('\n'.join(info_lines(short=args.short)))
    return 0
