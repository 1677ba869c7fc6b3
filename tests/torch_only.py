"""Run Python in a fresh interpreter that cannot import mmcv, mmdet, mmseg or mmpretrain."""
import os
import subprocess
import sys

from conftest import REPO

BLOCKED = ('mmcv', 'mmdet', 'mmseg', 'mmpretrain')
# Prepended to the code: a meta path finder, first in line, that refuses the OpenMMLab task
# libraries (and their submodules) as if they were not installed.
BLOCKER = f'''
import importlib.abc, sys
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f'No module named {{name!r}} (blocked)', name=name)
sys.meta_path.insert(0, _Blocker())
'''


def run_without_mm(code, timeout=300):
    """``python -c BLOCKER + code`` in the repository (one CPU thread); the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-c', BLOCKER + code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
