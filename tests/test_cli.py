"""The ``mmconvplug`` command and where the configs are (fast, in-process).

The installed wheel runs the same checks from outside the checkout in
``tests/test_wheel.py`` (slow).
"""
import importlib.util
import os.path as osp
import sys
from pathlib import Path

import pytest

from mmconvplug import configs_path
from mmconvplug.cli import COMMANDS, build_parser, main
from mmconvplug.configs_path import config_file, configs_root, list_configs

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'


def test_a_checkout_reads_its_own_configs_folder():
    assert Path(configs_root()) == CONFIGS
    assert Path(config_file('demo/ssd_r18_tiny_voc.py')) == (
        CONFIGS / 'demo' / 'ssd_r18_tiny_voc.py')


def test_packaged_configs_win_over_the_checkout(tmp_path, monkeypatch):
    packaged = tmp_path / '.mim' / 'configs'
    packaged.mkdir(parents=True)
    monkeypatch.setattr(configs_path, 'PACKAGED_CONFIGS', str(packaged))
    assert configs_root() == str(packaged)


def test_no_configs_anywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(configs_path, 'PACKAGED_CONFIGS',
                        str(tmp_path / 'a'))
    monkeypatch.setattr(configs_path, 'CHECKOUT_CONFIGS',
                        str(tmp_path / 'b'))
    with pytest.raises(FileNotFoundError, match='pip install'):
        configs_root()


def test_a_missing_config_names_where_it_looked():
    with pytest.raises(FileNotFoundError, match='mmconvplug configs') as err:
        config_file('doconv/no_such_config.py')
    assert str(CONFIGS) in str(err.value)


def test_configs_lists_every_config_but_base_parts(capsys):
    assert main(['configs']) == 0
    listed = capsys.readouterr().out.split()
    expected = sorted(str(p) for p in CONFIGS.rglob('*.py')
                      if '_base_' not in p.parts)
    assert listed == expected == list_configs()
    assert all(osp.isabs(p) for p in listed)


def test_configs_patterns_and_root(capsys):
    assert main(['configs', 'doconv/*', 'demo/ssd*']) == 0
    listed = capsys.readouterr().out.split()
    assert listed and all(
        '/doconv/' in p or p.endswith('demo/ssd_r18_tiny_voc.py')
        for p in listed)
    assert main(['configs', '--root']) == 0
    assert capsys.readouterr().out.strip() == str(CONFIGS)


def test_configs_pattern_matching_nothing_says_so(capsys):
    assert main(['configs', 'nothing/*']) == 1
    assert 'no config under' in capsys.readouterr().err


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for command in list(COMMANDS) + ['benchmark layers', 'benchmark models',
                                     'benchmark train']:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(command.split() + ['--help'])
        assert exit_info.value.code == 0, command
        assert capsys.readouterr().out.startswith(
            f'usage: mmconvplug {command}')


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert 'COMMAND' in capsys.readouterr().err


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'cli_tests_tool_{name}', REPO / 'tools' / f'{name}.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_tools_benchmark_names_its_modes_when_given_none(monkeypatch,
                                                         capsys):
    monkeypatch.setattr(sys, 'argv', ['benchmark.py'])
    with pytest.raises(SystemExit) as exit_info:
        _tool('benchmark').main()
    assert exit_info.value.code == 2
    assert 'MODE' in capsys.readouterr().err


def test_a_tool_and_its_subcommand_share_options(capsys):
    """``tools/fold.py --help`` and ``mmconvplug fold --help`` list the
    same options."""
    with pytest.raises(SystemExit):
        _tool('fold').main(['--help'])
    tool_help = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(['fold', '--help'])
    cli_help = capsys.readouterr().out
    for option in ('--cfg-options', '--shape', '--tolerance', 'checkpoint'):
        assert option in tool_help and option in cli_help
