"""Install everything windowlab needs into the current interpreter (bare or virtualenv).

Idempotent: each step first checks what is there and does nothing if it already fits, so a
second run takes seconds. Steps:

1. torch + torchvision: kept if present (users bring their own build); otherwise
   ``torch==2.14.1 torchvision==0.29.1``.
2. mmcv 2.1.0 with its C++ ops: the prebuilt wheel from ``../shared/wheelhouse`` when it
   was built for this Python and torch; otherwise built from the PyPI sdist. mmcv 2.1.0's
   setup.py forces ``-std=c++17`` but torch 2.14's headers need C++20, so the sdist is
   unpacked into a temporary folder, that flag is raised to C++20, and it is compiled with
   ``CFLAGS="-O2 -g0"`` (6 minutes on an idle 2-core machine here; up to 15 when busy).
3. the rest of ``requirements/runtime.txt`` (mmengine, mmdet, mmsegmentation, mmpretrain, ...),
   the optional extras asked for with ``--extras`` (``requirements/<name>.txt``; ``make test``
   asks for ``tests``), then windowlab itself in editable mode.
4. Verify ``from mmcv.ops import nms, RoIAlign``; fail loudly otherwise.

Usage: ``python tools/install.py [--extras tests ...]``
"""
import argparse
import glob
import importlib.metadata as md
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELHOUSE = os.path.join(os.path.dirname(REPO), 'shared', 'wheelhouse')
TORCH = ('torch==2.14.1', 'torchvision==0.29.1')
WHEEL_TORCH = '2.14.1'  # the torch the shared mmcv wheel was compiled against
MMCV = '2.1.0'
SPECIAL = ('torch', 'torchvision', 'mmcv')  # installed by their own steps, before the rest


def log(msg):
    print(f'[install] {msg}', flush=True)


def pip(*args, env=None):
    cmd = [sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check', *args]
    log(' '.join(cmd[3:]))
    subprocess.check_call(cmd, env=env)


def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def run_python(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)


def ensure_torch():
    if version('torch') and version('torchvision'):
        log(f'torch {version("torch")}, torchvision {version("torchvision")} present')
        return
    pip(*TORCH)


def shared_wheel():
    """The shared mmcv wheel, if it was built for this Python and this torch."""
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    torch_version = version('torch') or ''
    if torch_version.split('+')[0] != WHEEL_TORCH:
        return None
    wheels = glob.glob(os.path.join(WHEELHOUSE, f'mmcv-{MMCV}-{tag}-{tag}-*.whl'))
    return wheels[0] if wheels else None


def build_mmcv_from_source():
    log(f'building mmcv {MMCV} with ops from source: this takes 6-15 minutes on 2 cores '
        '(no prebuilt wheel fits this torch/Python)')
    start = time.time()
    pip('wheel')  # building without isolation needs bdist_wheel in this environment
    with tempfile.TemporaryDirectory() as tmp:
        # no build isolation: mmcv's setup.py imports torch even to read its metadata
        subprocess.check_call([sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary',
                               ':all:', '--no-build-isolation', f'mmcv=={MMCV}', '-d', tmp])
        with tarfile.open(glob.glob(os.path.join(tmp, 'mmcv-*.tar.gz'))[0]) as tar:
            tar.extractall(tmp, filter='data')
        src = glob.glob(os.path.join(tmp, f'mmcv-{MMCV}'))[0]
        setup_py = os.path.join(src, 'setup.py')
        with open(setup_py) as f:
            text = f.read()
        with open(setup_py, 'w') as f:
            f.write(text.replace('-std=c++17', '-std=c++20'))
        env = dict(os.environ, MMCV_WITH_OPS='1', MAX_JOBS=str(os.cpu_count() or 2),
                   CFLAGS='-O2 -g0', CXXFLAGS='-O2 -g0')
        pip('--no-deps', '--no-build-isolation', src, env=env)
    log(f'mmcv built in {(time.time() - start) / 60:.1f} min')


def mmcv_has_ops():
    """mmcv 2.1.0 is installed with its compiled ops (checked for real in verify())."""
    if version('mmcv') != MMCV:
        return False
    package = str(md.distribution('mmcv').locate_file('mmcv'))
    return bool(glob.glob(os.path.join(package, '_ext*.so')))


def ensure_mmcv():
    if mmcv_has_ops():
        log(f'mmcv {MMCV} with ops present')
        return
    wheel = shared_wheel()
    if wheel:
        pip('--no-deps', '--force-reinstall', wheel)
    else:
        build_mmcv_from_source()


def requirements(name):
    """``requirements/<name>.txt`` as a list of requirement strings (setup.py reads the same)."""
    with open(os.path.join(REPO, 'requirements', f'{name}.txt')) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def parse_requirement(text):
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a bare virtualenv: pip always carries its own copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement(text)


def satisfied(req):
    found = version(req.name)
    return found is not None and req.specifier.contains(found, prereleases=True)


def ensure_requirements(name):
    """Everything in ``requirements/<name>.txt`` except torch, torchvision and mmcv."""
    wanted = [parse_requirement(r) for r in requirements(name)]
    missing = [str(r) for r in wanted if r.name not in SPECIAL and not satisfied(r)]
    if not missing:
        log(f'requirements/{name}.txt present')
        return
    # mmcv is already installed: pip keeps it, and the cap on torch keeps torch.
    pip(*missing)


def ensure_windowlab():
    """windowlab installed editable from this checkout."""
    try:
        dist = md.distribution('windowlab')
        url = json.loads(dist.read_text('direct_url.json') or '{}')
        if url.get('url') == f'file://{REPO}' and url.get('dir_info', {}).get('editable'):
            log('windowlab (editable) present')
            return
    except md.PackageNotFoundError:
        pass
    pip('--no-deps', '--no-build-isolation', '-e', REPO)


def verify():
    ops = run_python('from mmcv.ops import nms, RoIAlign')
    if ops.returncode != 0:
        sys.exit('[install] FAILED: `from mmcv.ops import nms, RoIAlign` does not work:\n'
                 + ops.stderr[-3000:])
    result = run_python('import windowlab; '
                        'print("windowlab", windowlab.__version__, "projects:", windowlab.PROJECTS)')
    if result.returncode != 0:
        sys.exit('[install] FAILED: windowlab does not import:\n' + result.stderr[-3000:])
    log(result.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--extras', nargs='*', default=[], metavar='NAME',
                        help='optional extras to install too (requirements/NAME.txt), '
                        'e.g. --extras tests')
    args = parser.parse_args()
    ensure_torch()
    ensure_mmcv()
    ensure_requirements('runtime')
    for extra in args.extras:
        ensure_requirements(extra)
    ensure_windowlab()
    verify()


if __name__ == '__main__':
    main()
