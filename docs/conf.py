"""Sphinx configuration: user guides in Markdown (myst-parser), API pages
from the docstrings (autodoc + napoleon, OpenMMLab's ``Args:`` style).

Builds offline: no intersphinx, no downloads. ``make docs`` runs
``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""
import importlib
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)  # autodoc imports this checkout's mmconvplug

project = 'mmconvplug'
author = 'mmconvplug contributors'
copyright = '2026, mmconvplug contributors'
version = release = importlib.import_module(
    'mmconvplug.version').__version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store']

# Markdown: ``#`` headings get anchors, so ``page.md#section`` links resolve.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']

# API pages: Google / OpenMMLab docstrings (``Args:``, ``Returns:``).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
# A method without its own docstring (``forward``) is not listed with
# torch's ``nn.Module`` text.
autodoc_inherit_docstrings = False
autodoc_default_options = {'show-inheritance': True}
# Signatures name upstream types (mmengine, torch) that these pages do not
# document; offline, with no intersphinx, references to them cannot resolve.
nitpicky = False

html_theme = 'furo'
html_title = f'mmconvplug {release}'
html_static_path = []
