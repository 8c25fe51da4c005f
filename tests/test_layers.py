"""The package's layers hold: no import cycle, no import of a later layer.

The import graph of ``mmconvplug`` is read from the source with ``ast``:
every ``import`` / ``from ... import`` (module level and inside functions
alike: an import that runs later is still a dependency), absolute and
relative, and ``importlib.import_module`` / ``__import__`` of a literal
``mmconvplug`` name. A package (or top-level module) may import only from
the lines of :data:`LAYERS` above its own; the top line imports nothing of
ours. Each failure names the file and line.

The order is the design sketch's ("Layout and layers"), with two
refinements: ``registry.py`` sits above ``compat/`` (compat's optimizer
extension asks the registry whether a module is a conv variant, a query the
package fills in from the conv contract), and the deploy config and the
folded-checkpoint export are in ``apis/`` (they read configs; ``fold/`` is
the fold engine on models).
"""
import ast
import os.path as osp
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'mmconvplug'

#: Top-level packages and modules of mmconvplug, from the leaves down.
LAYERS: Tuple[Tuple[str, ...], ...] = (
    # leaf utilities: timing / memory / FLOPs / tables; checkpoint IO, the
    # config walker, torch helpers; the version; where the configs are
    ('analysis', 'utils', 'version', 'configs_path'),
    ('registry', ),  # the registries, the conv-variant query
    ('compat', ),  # every import-time patch of upstream, one list
    ('convs', ),  # one file per variant + the contract
    ('backbones', 'keypoint'),  # models built from convs
    ('datagen', ),  # tiny datasets (may use keypoint metadata)
    ('fold', ),  # fold engine: variants -> plain convs, BN fusion, verify
    ('swap', ),  # model-wide conv swap (may use fold)
    ('engine', ),  # hooks, the checkpoint-fit engine, the Pretrained init
    ('apis', ),  # config -> model -> checkpoint; test / fold / export
    ('deploy', 'benchmarks', 'demo', 'convert'),  # ONNX, benchmarks, demo
    ('__init__', ),  # the package: imports what registers
    ('cli', ),  # the mmconvplug command
    ('__main__', ),  # python -m mmconvplug
)

Edge = Tuple[str, str, str, int]  # (from top, to top, file, line)


def layer_of(top: str) -> Optional[int]:
    for index, line in enumerate(LAYERS):
        if top in line:
            return index
    return None


def _module_name(path: Path, root: Path) -> Tuple[str, bool]:
    """``mmconvplug.a.b`` of ``root/mmconvplug/a/b.py``; and whether it is a
    package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    is_package = parts[-1] == '__init__'
    if is_package:
        parts = parts[:-1]
    return '.'.join(parts), is_package


def _top(name: str, root: Path) -> Optional[str]:
    """The top-level package / module of ``mmconvplug...`` (``'__init__'``
    for the package itself); None outside mmconvplug."""
    parts = name.split('.')
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return '__init__'
    return parts[1]


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split('.'))
    return base.with_suffix('.py').is_file() or (base /
                                                 '__init__.py').is_file()


def _literal_import(node: ast.Call) -> Optional[str]:
    """The name of ``importlib.import_module('...')`` / ``__import__('...')``
    with a literal (or ``f'mmconvplug.x.{...}'``) first argument."""
    func = node.func
    name = (func.attr if isinstance(func, ast.Attribute) else
            func.id if isinstance(func, ast.Name) else None)
    if name not in ('import_module', '__import__') or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if (isinstance(arg, ast.JoinedStr) and arg.values
            and isinstance(arg.values[0], ast.Constant)):
        return str(arg.values[0].value).rstrip('.') or None
    return None


def imported_names(path: Path, root: Path) -> Iterator[Tuple[str, int]]:
    """``(absolute module name, line)`` of everything ``path`` imports."""
    module, is_package = _module_name(path, root)
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.')
                if not is_package:
                    base = base[:-1]
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module
                                          else []))
            else:
                target = node.module
            # ``from pkg import sub`` imports the submodule ``pkg.sub``.
            subs = [f'{target}.{a.name}' for a in node.names
                    if _is_module(f'{target}.{a.name}', root)]
            if subs and len(subs) == len(node.names):
                for sub in subs:
                    yield sub, node.lineno
            else:
                yield target, node.lineno
        elif isinstance(node, ast.Call):
            name = _literal_import(node)
            if name is not None:
                yield name, node.lineno


def import_edges(root: Path) -> List[Edge]:
    """Every import between two top-level parts of ``root/mmconvplug``."""
    edges = []
    for path in sorted((root / PACKAGE).rglob('*.py')):
        source = _top(_module_name(path, root)[0], root)
        for name, line in imported_names(path, root):
            target = _top(name, root)
            if target is not None and target != source:
                edges.append((source, target,
                              str(path.relative_to(root)), line))
    return edges


def cycles(edges: List[Edge]) -> List[List[str]]:
    """The strongly connected sets of more than one top-level part."""
    graph: Dict[str, set] = defaultdict(set)
    for source, target, _, _ in edges:
        graph[source].add(target)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_violations(edges: List[Edge]) -> List[str]:
    """One line per import of the same or a later layer."""
    problems = []
    for source, target, path, line in edges:
        src, dst = layer_of(source), layer_of(target)
        if src is None or dst is None or dst < src:
            continue
        where = 'the same layer' if dst == src else 'a later layer'
        problems.append(
            f'{path}:{line}: {source} (layer {src}) imports {target} '
            f'(layer {dst}, {where}); a package imports only from the '
            'layers above its own (tests/test_layers.py LAYERS)')
    return problems


@pytest.fixture(scope='module')
def edges() -> List[Edge]:
    return import_edges(REPO)


def test_every_top_level_part_has_a_layer():
    parts = {path.stem if path.is_file() else path.name
             for path in (REPO / PACKAGE).iterdir()
             if (path.suffix == '.py' or (path / '__init__.py').is_file())}
    unplaced = sorted(part for part in parts if layer_of(part) is None)
    assert not unplaced, (
        f'{unplaced}: add each to a line of LAYERS in tests/test_layers.py '
        '(and to the layer list of the docs)')


def test_no_import_cycle_between_top_level_packages(edges):
    found = cycles(edges)
    detail = []
    for component in found:
        members = set(component)
        detail += [f'  {path}:{line}: {s} -> {t}'
                   for s, t, path, line in edges
                   if s in members and t in members]
    assert not found, ('import cycles between ' + '; '.join(
        ' <-> '.join(c) for c in found) + ':\n' + '\n'.join(detail))


def test_no_import_of_a_later_layer(edges):
    problems = layer_violations(edges)
    assert not problems, '\n'.join(problems)


def test_the_graph_counts_every_kind_of_import(tmp_path):
    """Module-level and function-level, absolute and relative, ``from pkg
    import sub`` and ``importlib.import_module``: each is an edge."""
    package = tmp_path / PACKAGE
    for folder in ('low', 'high', 'mid'):
        (package / folder).mkdir(parents=True)
        (package / folder / '__init__.py').write_text('')
    (package / '__init__.py').write_text('')
    (package / 'low' / 'a.py').write_text(
        'import os\n'
        'from mmconvplug.high import thing\n'  # 2: absolute
        'def f():\n'
        '    from ..mid import other\n'  # 4: relative, in a function
        '    import mmconvplug.high.x\n'  # 5: absolute, in a function
        'def g():\n'
        '    import importlib\n'
        "    importlib.import_module('mmconvplug.mid.y')\n"  # 8: literal
        'from mmconvplug import high\n'  # 9: a subpackage by name
        'from . import b\n')  # 10: the same package
    (package / 'low' / 'b.py').write_text('')
    found = {(s, t, line) for s, t, _, line in import_edges(tmp_path)}
    assert found == {('low', 'high', 2), ('low', 'mid', 4),
                     ('low', 'high', 5), ('low', 'mid', 8),
                     ('low', 'high', 9)}
    assert cycles([('a', 'b', 'x.py', 1), ('b', 'a', 'y.py', 2),
                   ('b', 'c', 'z.py', 3)]) == [['a', 'b']]


def test_layers_match_the_package_tree():
    """Every line of LAYERS names parts that exist (no stale entry)."""
    stale = [part for line in LAYERS for part in line
             if part != '__init__' and not (
                 (REPO / PACKAGE / f'{part}.py').is_file()
                 or (REPO / PACKAGE / part / '__init__.py').is_file())]
    assert not stale, f'LAYERS names {stale}, which mmconvplug lacks'
    assert osp.isfile(REPO / PACKAGE / '__main__.py')
