"""Ship ``configs/`` and ``tools/`` inside the wheel, as mmdet and mmseg do.

The metadata is in ``pyproject.toml``; this file only adds one step to
``build_py``: the repository's ``configs/`` and ``tools/`` are copied to
``mmconvplug/.mim/`` in the build tree (mmdet's ``.mim`` convention, read
by ``mim`` and by :func:`mmconvplug.configs_path.configs_root`). The source
tree is left untouched; an editable install (``pip install -e .``) copies
nothing and reads the checkout's ``configs/`` directly.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
#: Repository folders shipped under ``mmconvplug/.mim/``.
MIM_FOLDERS = ('configs', 'tools')


class BuildPyWithMim(build_py):
    """``build_py`` that also copies :data:`MIM_FOLDERS` into the package."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # the checkout's own configs/ are read in place
        mim = os.path.join(self.build_lib, 'mmconvplug', '.mim')
        for folder in MIM_FOLDERS:
            target = os.path.join(mim, folder)
            if os.path.isdir(target):
                shutil.rmtree(target)  # never ship a stale copy
            shutil.copytree(
                os.path.join(HERE, folder), target,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


setup(cmdclass={'build_py': BuildPyWithMim})
