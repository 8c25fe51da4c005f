"""The wheel works outside the repository.

A copy of the sources is built into a wheel (``pip wheel --no-deps
--no-build-isolation``), installed with ``pip install --no-deps --target``
into an empty folder, and run from another empty folder with only that
folder on ``PYTHONPATH``: the installed copy is imported (checked through
``mmconvplug.__file__``), never the checkout. Into this environment pip
would install the wheel and change nothing else. Every sub-command's
``--help`` works, ``mmconvplug configs`` lists the packaged configs with
absolute paths, and ``mmconvplug swap`` builds packaged configs, whose
``_base_`` parts (relative paths and ``mmdet::`` names) resolve inside the
installed package.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mmcv
import mmdet
import mmengine
import mmseg
import pytest
from packaging.requirements import Requirement

from mmconvplug.cli import COMMANDS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: What a clean clone gives the build (MANIFEST.in adds configs/, tools/).
SOURCES = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md',
           'mmconvplug', 'configs', 'tools')
DETSTAGE = 'doconv/mask-rcnn_r50-doconv-detstage_fpn_1x_coco.py'
TINY_SSD = 'demo/ssd_r18_tiny_voc.py'

#: Runs in the installed copy: every sub-command's ``--help``, as JSON.
HELP_DRIVER = r'''
import contextlib, io, json, sys
import mmconvplug
from mmconvplug.cli import COMMANDS, main
from mmconvplug.configs_path import configs_root
helps = {}
for command in list(COMMANDS) + ['benchmark layers', 'benchmark models',
                                 'benchmark train']:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(command.split() + ['--help'])
            code = None
        except SystemExit as exit:
            code = exit.code
    helps[command] = dict(code=code, text=out.getvalue())
print(json.dumps(dict(file=mmconvplug.__file__, configs=configs_root(),
                      helps=helps)))
'''


def _run(command, **kwargs):
    result = subprocess.run([str(c) for c in command], capture_output=True,
                            text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (command, result.stdout[-3000:],
                                    result.stderr[-3000:])
    return result


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """``(wheel, target, env, cwd)``: the built wheel, the folder it is
    installed in, an environment that imports only it, an empty folder."""
    base = tmp_path_factory.mktemp('wheel')
    source = base / 'source'
    source.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    wheels = base / 'wheels'
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
          '--no-build-isolation', '--disable-pip-version-check', '-q', '-w',
          wheels, source])
    (wheel, ) = wheels.glob('mmconvplug-*.whl')
    target = base / 'site'
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
          '--disable-pip-version-check', '-q', '--target', target, wheel])
    env = dict(os.environ, PYTHONPATH=str(target))
    cwd = base / 'elsewhere'
    cwd.mkdir()
    return wheel, target, env, cwd


def test_wheel_ships_configs_tools_cli_and_declares_ranges(installed):
    wheel = installed[0]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(
            n for n in names if n.endswith('.dist-info/METADATA'))).decode()
        entry_points = archive.read(next(
            n for n in names
            if n.endswith('.dist-info/entry_points.txt'))).decode()
    repo_configs = {p.relative_to(REPO).as_posix()
                    for p in (REPO / 'configs').rglob('*') if p.is_file()}
    shipped = {n[len('mmconvplug/.mim/'):] for n in names
               if n.startswith('mmconvplug/.mim/configs/')}
    assert shipped == repo_configs
    assert 'mmconvplug/.mim/tools/train.py' in names
    assert 'mmconvplug/cli/__init__.py' in names
    assert 'mmconvplug/convs/csrc/compose_kernels.cpp' in names
    assert not any('__pycache__' in n for n in names)
    assert 'mmconvplug = mmconvplug.cli:main' in entry_points
    requires = {}
    for line in metadata.splitlines():
        if line.startswith('Requires-Dist:'):
            requirement = Requirement(line.split(':', 1)[1])
            requires[requirement.name] = requirement.specifier
    # Ranges, not pins, and the versions the suite runs on are inside them.
    for name, module in (('mmcv', mmcv), ('mmengine', mmengine),
                         ('mmdet', mmdet), ('mmsegmentation', mmseg)):
        operators = {spec.operator for spec in requires[name]}
        assert operators == {'>=', '<'}, (name, requires[name])
        assert requires[name].contains(module.__version__,
                                       prereleases=True), name
    assert 'Requires-Python: >=3.8' in metadata
    assert 'ninja' in requires  # builds the fused CPU kernels


def test_pip_install_keeps_the_environment_as_it_is(installed, tmp_path):
    """Into this environment (torch, mmcv, mmdet, mmseg already there) pip
    would install mmconvplug and nothing else: no index is even asked."""
    wheel = installed[0]
    report = tmp_path / 'report.json'
    _run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
          '--disable-pip-version-check', '-q', '--report', report, wheel])
    installs = [item['metadata']['name']
                for item in json.loads(report.read_text())['install']]
    assert installs == ['mmconvplug']


def test_every_subcommand_help_from_the_installed_copy(installed):
    _, target, env, cwd = installed
    result = _run([sys.executable, '-c', HELP_DRIVER], env=env, cwd=cwd)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    package = target / 'mmconvplug'
    assert Path(report['file']).resolve() == (package /
                                              '__init__.py').resolve()
    assert Path(report['configs']).resolve() == (package / '.mim' /
                                                 'configs').resolve()
    assert set(COMMANDS) >= {'train', 'test', 'fold', 'export', 'swap',
                             'benchmark', 'demo', 'info', 'configs'}
    for command, answer in report['helps'].items():
        assert answer['code'] == 0, (command, answer)
        assert answer['text'].startswith(f'usage: mmconvplug {command}'), (
            command, answer['text'][:200])
    # The console script pip wrote is the same command.
    usage = _run([target / 'bin' / 'mmconvplug', '--help'], env=env,
                 cwd=cwd).stdout
    for command in COMMANDS:
        assert command in usage


def test_the_installed_copy_builds_its_cpu_kernels(installed, tmp_path):
    """The fused kernels compile from the wheel's own source (an empty
    extension cache: nothing reused from the checkout's build), with a
    PATH that lacks the venv (``ninja`` is found beside the interpreter)."""
    _, target, env, cwd = installed
    script = ('from mmconvplug.convs import cpu_kernels\n'
              'cpu_kernels.load_kernels(raise_error=True)\n'
              'print(cpu_kernels.SOURCE)\n'
              'print(cpu_kernels.kernels_status())\n')
    env = dict(env, TORCH_EXTENSIONS_DIR=str(tmp_path / 'ext'),
               PATH='/usr/bin:/bin')
    out = _run([sys.executable, '-c', script], env=env,
               cwd=cwd).stdout.splitlines()
    assert Path(out[-2]).resolve() == (target / 'mmconvplug' / 'convs' /
                                       'csrc' /
                                       'compose_kernels.cpp').resolve()
    assert out[-1].startswith('loaded (mmconvplug_compose_kernels_torch')


def test_configs_lists_the_packaged_configs(installed):
    _, target, env, cwd = installed
    out = _run([target / 'bin' / 'mmconvplug', 'configs'], env=env,
               cwd=cwd).stdout.split()
    root = (target / 'mmconvplug' / '.mim' / 'configs').resolve()
    expected = sorted(
        p.relative_to(REPO / 'configs').as_posix()
        for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)
    assert all(os.path.isabs(path) and os.path.isfile(path) for path in out)
    assert sorted(Path(p).resolve().relative_to(root).as_posix()
                  for p in out) == expected


def test_swap_builds_packaged_configs(installed):
    _, target, env, cwd = installed
    root = target / 'mmconvplug' / '.mim' / 'configs'
    command = [target / 'bin' / 'mmconvplug', 'swap']
    # mmdet:: inheritance and the config's own conv_swap block.
    out = _run(command + [root / DETSTAGE], env=env, cwd=cwd).stdout
    assert 'DOConv' in out and 'params before' in out
    assert 'rpn_head.rpn_conv' in out
    # Relative _base_ parts (../_base_/...) next to mmdet:: ones.
    out = _run(command + [
        root / TINY_SSD, '--cfg-options', 'model.conv_swap.type=RefConv',
        'model.conv_swap.include=neck'
    ], env=env, cwd=cwd).stdout
    assert 'RefConv' in out and 'neck.' in out
