"""The code is valid Python 3.8, the floor ``requires-python`` declares.

Only Python 3.11 can be installed here, so the floor is checked statically:

* every ``.py`` file of the package, tools, configs and tests parses with
  ``ast.parse(..., feature_version=(3, 8))``, which rejects 3.9+ grammar
  (``match``, parenthesised context managers, ``except*``, ...);
* annotations that Python 3.8 evaluates at import time (function
  signatures, module- and class-level variables, in files without ``from
  __future__ import annotations``) use no ``list[int]``-style builtin
  generics (3.9) and no ``X | Y`` unions (3.10);
* no name from a short list of well-known 3.9+ standard-library additions
  is imported or called, and no 3.10 keyword (``zip(strict=)``,
  ``dataclass(slots=, kw_only=)``) is passed.

Not caught: other 3.9+ library API (a method or keyword argument that is
new), ``dict | dict`` and other operators whose operand types only run time
knows. ruff (``target-version = "py38"`` in pyproject.toml) reports the same
grammar errors where it is installed.
"""
import ast
import os.path as osp
from pathlib import Path
from typing import Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ('mmconvplug', 'tools', 'configs', 'tests')

#: Builtins that Python 3.8 cannot subscript at run time (PEP 585, 3.9).
PEP585_BUILTINS = {'list', 'dict', 'tuple', 'set', 'frozenset', 'type'}

#: ``module.name`` -> the Python version that added it.
NEW_STDLIB = {
    'functools.cache': '3.9', 'math.lcm': '3.9', 'math.nextafter': '3.9',
    'math.ulp': '3.9', 'ast.unparse': '3.9', 'random.randbytes': '3.9',
    'asyncio.to_thread': '3.9', 'importlib.resources.files': '3.9',
    'typing.Annotated': '3.9', 'os.waitstatus_to_exitcode': '3.9',
    'itertools.pairwise': '3.10', 'typing.TypeAlias': '3.10',
    'typing.ParamSpec': '3.10', 'typing.TypeGuard': '3.10',
    'typing.Concatenate': '3.10', 'typing.Self': '3.11',
    'typing.Never': '3.11', 'typing.assert_never': '3.11',
    'typing.LiteralString': '3.11', 'typing.Required': '3.11',
    'typing.NotRequired': '3.11', 'enum.StrEnum': '3.11',
    'datetime.UTC': '3.11', 'contextlib.chdir': '3.11',
}
#: Modules that 3.8 does not have.
NEW_MODULES = {'zoneinfo': '3.9', 'graphlib': '3.9', 'tomllib': '3.11'}
#: Methods new in 3.9+ (on ``str``/``bytes``; ``int.bit_count`` 3.10).
NEW_METHODS = {'removeprefix': '3.9', 'removesuffix': '3.9',
               'bit_count': '3.10'}
#: ``(callable, keyword)`` -> the Python version that added the keyword.
NEW_KEYWORDS = {('zip', 'strict'): '3.10', ('dataclass', 'slots'): '3.10',
                ('dataclass', 'kw_only'): '3.10', ('field', 'kw_only'): '3.10'}


def python_files() -> List[Path]:
    files = [REPO / 'setup.py']
    for folder in FOLDERS:
        files.extend(sorted((REPO / folder).rglob('*.py')))
    return [f for f in files if f.is_file()]


def _id(path: Path) -> str:
    return osp.relpath(path, REPO)


def _has_future_annotations(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom)
               and node.module == '__future__'
               and any(a.name == 'annotations' for a in node.names)
               for node in tree.body)


def _evaluated_annotations(tree: ast.Module) -> Iterator[ast.expr]:
    """Annotations 3.8 evaluates when the module is imported or a function
    defined: signatures, and module / class body variables (a local
    variable's annotation inside a function is never evaluated)."""
    def visit(body, in_function: bool):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                for arg in (args.posonlyargs + args.args + args.kwonlyargs
                            + [args.vararg, args.kwarg]):
                    if arg is not None and arg.annotation is not None:
                        yield arg.annotation
                if node.returns is not None:
                    yield node.returns
                yield from visit(node.body, True)
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, in_function)
            elif isinstance(node, ast.AnnAssign) and not in_function:
                yield node.annotation
            else:
                for field in ('body', 'orelse', 'finalbody', 'handlers'):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from visit(children, in_function)
    yield from visit(tree.body, False)


def _too_new_annotation(annotation: ast.expr) -> str:
    if isinstance(annotation, ast.Constant):  # a string: not evaluated
        return ''
    for node in ast.walk(annotation):
        if (isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id in PEP585_BUILTINS):
            return f'{node.value.id}[...] (3.9)'
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return 'X | Y (3.10)'
    return ''


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return ''


def too_new_for_38(source: str) -> List[str]:
    """What in ``source`` needs Python > 3.8 (empty: nothing found).

    Raises:
        SyntaxError: 3.9+ grammar (``ast.parse`` with ``feature_version``).
    """
    tree = ast.parse(source, feature_version=(3, 8))
    found = []
    if not _has_future_annotations(tree):
        for annotation in _evaluated_annotations(tree):
            what = _too_new_annotation(annotation)
            if what:
                found.append(f'line {annotation.lineno}: annotation {what}')
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split('.')[0]
                if top in NEW_MODULES:
                    found.append(f'line {node.lineno}: import {alias.name} '
                                 f'({NEW_MODULES[top]})')
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split('.')[0]
            if top in NEW_MODULES:
                found.append(f'line {node.lineno}: from {node.module} '
                             f'({NEW_MODULES[top]})')
            for alias in node.names:
                name = f'{node.module}.{alias.name}'
                if name in NEW_STDLIB:
                    found.append(f'line {node.lineno}: {name} '
                                 f'({NEW_STDLIB[name]})')
        elif isinstance(node, ast.Call):
            func = _dotted(node.func).split('.')[-1]
            for keyword in node.keywords:
                version = NEW_KEYWORDS.get((func, keyword.arg))
                if version:
                    found.append(f'line {node.lineno}: {func}('
                                 f'{keyword.arg}=...) ({version})')
        elif isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name in NEW_STDLIB:
                found.append(f'line {node.lineno}: {name} '
                             f'({NEW_STDLIB[name]})')
            elif node.attr in NEW_METHODS:
                found.append(f'line {node.lineno}: .{node.attr}() '
                             f'({NEW_METHODS[node.attr]})')
    return found


@pytest.mark.parametrize('path', python_files(), ids=_id)
def test_file_is_valid_python38(path):
    source = path.read_text(encoding='utf-8')
    try:
        found = too_new_for_38(source)
    except SyntaxError as error:
        pytest.fail(f'{_id(path)} is not Python 3.8 syntax: {error}')
    assert not found, f'{_id(path)} needs Python > 3.8: ' + '; '.join(found)


@pytest.mark.parametrize('source,needs', [
    ('match x:\n    case 1:\n        pass\n', SyntaxError),
    ('with (open("a") as a, open("b") as b):\n    pass\n', SyntaxError),
    ('def f(a: list[int]) -> None: ...\n', 'list[...]'),
    ('def f(a) -> int | None: ...\n', 'X | Y'),
    ('class C:\n    x: dict[str, int] = {}\n', 'dict[...]'),
    ('import tomllib\n', 'tomllib'),
    ('from functools import cache\n', 'functools.cache'),
    ("'abc'.removeprefix('a')\n", 'removeprefix'),
    ('pairs = list(zip(a, b, strict=True))\n', 'zip(strict=...)'),
    ('@dataclass(slots=True)\nclass C:\n    x: int = 0\n', 'slots'),
])
def test_the_check_catches_what_38_lacks(source, needs):
    if needs is SyntaxError:
        with pytest.raises(SyntaxError):
            too_new_for_38(source)
    else:
        found = too_new_for_38(source)
        assert any(needs in line for line in found), found


@pytest.mark.parametrize('source', [
    'from __future__ import annotations\ndef f(a: list[int]) -> int | None:'
    ' ...\n',
    'def f():\n    x: list[int] = []\n    return x\n',  # never evaluated
    "def f(a: 'list[int]'): ...\n",
    'from typing import List, Optional\ndef f(a: List[int]) -> '
    'Optional[int]: ...\n',
    'y = (x := 1)\n',  # the walrus is 3.8
])
def test_the_check_accepts_what_38_has(source):
    assert too_new_for_38(source) == []
