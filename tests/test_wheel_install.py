"""A normal (non-editable) install works: a wheel built from this checkout, installed into a
fresh virtualenv and used from a folder outside the checkout.

The new virtualenv sees the test environment's packages (torch, the OpenMMLab stack) through a
plain path line in a ``.pth`` file, so nothing is downloaded; the test environment's own
windowlab (editable, from this checkout) stays invisible there, because a path line does not
run that environment's ``.pth`` hooks. So everything below runs on the wheel's files alone.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg

REPO = Path(__file__).resolve().parents[1]
# What a wheel is built from (a copy, so the build leaves nothing behind in the checkout).
SOURCES = ('setup.py', 'MANIFEST.in', 'README.md', 'requirements', 'windowlab', 'projects')
CLS_TOY = REPO / 'configs/swin/swin-mini-p4-w7_toy-in.py'


def run(python, *args, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    env['OMP_NUM_THREADS'] = '1'
    result = subprocess.run([str(python), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f'{args}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}'
    return result.stdout


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    """(python of a fresh virtualenv with the wheel installed, a folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(REPO / name, src / name)
    run(sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', src,
        '-w', tmp / 'dist', cwd=tmp)
    wheel, = (tmp / 'dist').glob('windowlab-*.whl')

    venv = tmp / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    inner = Path(run(python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])',
                     cwd=tmp).strip())
    outer = {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']}
    (inner / 'test-environment.pth').write_text(''.join(f'{p}\n' for p in sorted(outer)))
    run(sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q',
        '--target', inner, wheel, cwd=tmp)
    outside = tmp / 'elsewhere'
    outside.mkdir()
    return python, outside


def test_wheel_holds_windowlab_and_its_papers_under_one_name(wheel_env):
    python, outside = wheel_env
    out = run(python, '-c', textwrap.dedent('''
        import sys, windowlab, windowlab.projects.vwformer, windowlab.evaluation
        print(windowlab.__file__)
        print(windowlab.projects.vwformer.__file__)
        print(windowlab.PROJECTS)
        print('projects' in sys.modules)
        '''), cwd=outside).splitlines()
    inner = str(python.parents[1])
    assert out[0].startswith(inner) and out[1].startswith(inner), out
    assert out[2] == "['biformer', 'shift_equivariant', 'vsa', 'vwformer']"
    assert out[3] == 'False'  # no top-level `projects` package to shadow anyone's


def test_every_registered_model_builds_from_the_wheel(wheel_env):
    """Every toy config's model (and test-time-augmentation wrapper) builds, and together they
    use every registered type."""
    python, outside = wheel_env
    out = run(python, '-c', textwrap.dedent(f'''
        import glob
        from mmengine.config import Config
        import windowlab
        from windowlab import launch, registry
        used = set()
        for path in sorted(glob.glob({str(REPO / 'configs')!r} + '/*/*toy*.py')):
            cfg = Config.fromfile(path)
            model = launch.build_model(cfg)
            if 'tta_model' in cfg:  # tools/test.py --tta wraps the model
                model = launch.build_in_scope(dict(cfg.tta_model, module=cfg.model),
                                              cfg.default_scope)
            used |= {{type(m).__name__ for m in model.modules()}}
        for task in registry.SCOPE_OF_TASK:
            registry.register_task(task)
        print(sorted({{name for name, _, _ in registry._MODELS}} - used))
        '''), cwd=outside)
    assert out.strip().splitlines()[-1] == '[]'


def test_train_and_test_tools_run_on_the_wheel(wheel_env, tmp_path):
    python, outside = wheel_env
    make_toy_data(str(tmp_path / 'data'), names=('toy-in',), num_train=4, num_val=2)
    cfg = quick_training_cfg(CLS_TOY, tmp_path / 'data', tmp_path / 'work', iters=2,
                             checkpoint_interval=2)
    cfg.dump(str(tmp_path / 'cls.py'))
    run(python, REPO / 'tools/train.py', tmp_path / 'cls.py', cwd=outside)
    checkpoint = tmp_path / 'work' / 'iter_2.pth'
    assert checkpoint.is_file()
    out = run(python, REPO / 'tools/test.py', tmp_path / 'cls.py', checkpoint, '--work-dir',
              tmp_path / 'test', cwd=outside)
    assert 'accuracy/top1' in out
