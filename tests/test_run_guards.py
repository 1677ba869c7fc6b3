"""tools/train.py refuses runs that would lose or mix up work, before building anything:
a busy work_dir (lock with stale-lock detection), a work_dir with an earlier run's
checkpoints (without --resume/--overwrite), a truncated checkpoint to resume, too little
disk space for the next checkpoint, a read-only work_dir; a disk that fills up while a
checkpoint is written gives a clear error and keeps the previous file."""
import argparse
import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from windowlab import compat, launch
from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg

REPO = Path(__file__).resolve().parents[1]
SEG_TOY = REPO / 'configs/swin/upernet_swin-mini-p4-w7_toy-ade.py'


def run_train(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, str(REPO / 'tools/train.py'), *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def seg_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('guards')
    make_toy_data(str(tmp / 'data'), names=('toy-ade',), num_train=4, num_val=2)
    cfg = quick_training_cfg(SEG_TOY, tmp / 'data', tmp / 'unused', iters=2)
    cfg.dump(str(tmp / 'seg.py'))
    return tmp / 'seg.py'


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def write_lock(work_dir, **holder):
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / '.train.lock'
    path.write_text(json.dumps(dict(started=time.time(), command='train.py x', **holder)))
    return path


# --- the lock --------------------------------------------------------------------------

def test_lock_refuses_a_second_run_and_is_released(tmp_path):
    with launch.WorkDirLock(str(tmp_path)) as lock:
        holder = json.loads(Path(lock.path).read_text())
        assert holder['pid'] == os.getpid() and holder['host'] == socket.gethostname()
        with pytest.raises(launch.RunError, match=rf'in use by another training run \(pid '
                           rf'{os.getpid()} on {socket.gethostname()}'):
            launch.WorkDirLock(str(tmp_path)).acquire()
    assert not Path(lock.path).exists()
    launch.WorkDirLock(str(tmp_path)).acquire().release()  # free again


def test_lock_of_a_crashed_run_is_taken_over(tmp_path):
    write_lock(tmp_path, pid=dead_pid(), host=socket.gethostname())
    lock = launch.WorkDirLock(str(tmp_path)).acquire()
    assert json.loads(Path(lock.path).read_text())['pid'] == os.getpid()
    lock.release()


def test_lock_of_another_host_is_stale_only_without_heartbeat(tmp_path):
    path = write_lock(tmp_path, pid=1, host='other-host')
    with pytest.raises(launch.RunError, match='pid 1 on other-host'):
        launch.WorkDirLock(str(tmp_path)).acquire()
    old = time.time() - launch.WorkDirLock.STALE_S - 5
    os.utime(path, (old, old))  # no heartbeat for longer than STALE_S: that run is gone
    launch.WorkDirLock(str(tmp_path)).acquire().release()


def test_train_refuses_a_busy_work_dir(seg_config, tmp_path):
    write_lock(tmp_path, pid=os.getpid(), host=socket.gethostname())  # this process is alive
    result = run_train(seg_config, '--work-dir', tmp_path)
    assert result.returncode == 1
    assert f'is in use by another training run (pid {os.getpid()}' in result.stderr
    assert 'choose another --work-dir' in result.stderr and 'Traceback' not in result.stderr


# --- an earlier run's checkpoints ------------------------------------------------------

def test_new_run_does_not_overwrite_an_earlier_runs_checkpoints(seg_config, tmp_path):
    (tmp_path / 'iter_2.pth').write_bytes(b'earlier run')
    result = run_train(seg_config, '--work-dir', tmp_path)
    assert result.returncode == 1
    assert 'already holds checkpoints of an earlier run (iter_2.pth)' in result.stderr
    assert '--resume' in result.stderr and '--overwrite' in result.stderr
    assert (tmp_path / 'iter_2.pth').read_bytes() == b'earlier run'
    assert not (tmp_path / 'seg.py').exists()  # nothing written: not even the config
    # --overwrite says so explicitly
    result = run_train(seg_config, '--work-dir', tmp_path, '--overwrite')
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'iter_2.pth').read_bytes() != b'earlier run'


# --- truncated checkpoint --------------------------------------------------------------

def test_resume_from_a_truncated_checkpoint_names_the_problem(seg_config, tmp_path):
    torch.save({'meta': {'seed': 1}, 'state_dict': {'w': torch.zeros(1000)}}, tmp_path / 'iter_2.pth')
    data = (tmp_path / 'iter_2.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    result = run_train(seg_config, '--work-dir', tmp_path, '--resume')
    assert result.returncode == 1
    assert f"cannot resume from '{tmp_path / 'iter_4.pth'}': the file is truncated or corrupt" in result.stderr
    assert 'Other checkpoints there: iter_2.pth' in result.stderr
    assert 'PytorchStreamReader' in result.stderr and 'Traceback' not in result.stderr


def test_resume_takes_the_checkpoints_seed(tmp_path):
    torch.save({'meta': {'seed': 1234}}, tmp_path / 'iter_2.pth')
    cfg = Config(dict(resume=True, load_from=str(tmp_path / 'iter_2.pth'),
                             work_dir=str(tmp_path), randomness=dict(seed=None)))
    assert launch.prepare_resume(cfg) == str(tmp_path / 'iter_2.pth')
    assert cfg.randomness.seed == 1234


# --- disk space ------------------------------------------------------------------------

def test_checkpoint_size_estimate_counts_weights_and_optimizer_state(tmp_path):
    model = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20))
    params = 10 * 20 + 20 + 20 + 20  # linear weight, bias; bn weight, bias (float32)
    buffers = 20 * 4 + 20 * 4 + 8  # running mean, var (float32), num_batches_tracked (int64)
    weights = params * 4 + buffers
    assert launch.checkpoint_size_estimate(model, 'AdamW') == weights + 2 * params * 4  # 2 moments
    assert launch.checkpoint_size_estimate(model, 'SGD') == weights + params * 4  # momentum
    big = tmp_path / 'iter_2.pth'
    big.write_bytes(b'0' * 10 ** 6)  # the checkpoint being resumed is a better estimate
    assert launch.checkpoint_size_estimate(model, 'SGD', str(big)) == 10 ** 6


def test_too_little_disk_space_is_refused_at_start(tmp_path, monkeypatch):
    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(launch.shutil, 'disk_usage', lambda path: usage(10 ** 9, 10 ** 9, 2 ** 20))
    with pytest.raises(launch.RunError, match=r'not enough disk space in work_dir .*: 1\.0 MiB '
                       r'free, the next checkpoint needs about 3\.0 MiB'):
        launch.check_free_space(str(tmp_path), 3 * 2 ** 20)
    launch.check_free_space(str(tmp_path), 2 ** 19)  # fits


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'iter_2.pth'
    compat.atomic_write(b'previous', str(path))
    real_fdopen = os.fdopen

    def full_disk(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)

        def write(data):
            raise OSError(errno.ENOSPC, 'No space left on device')

        f.write = write
        return f

    monkeypatch.setattr(os, 'fdopen', full_disk)
    with pytest.raises(compat.DiskFullError, match=r'disk full while writing .*iter_2\.pth: it '
                       r'needs 2\.0 MiB, .* MiB are free in .*previous checkpoint is intact'):
        compat.atomic_write(b'0' * 2 ** 21, str(path))
    assert path.read_bytes() == b'previous'
    assert os.listdir(tmp_path) == ['iter_2.pth']


# --- read-only work_dir ----------------------------------------------------------------

def test_read_only_work_dir_is_refused_at_start(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system')

    monkeypatch.setattr(launch.tempfile, 'mkstemp', read_only)
    with pytest.raises(launch.RunError, match=r"work_dir '.*' is not writable \(Read-only file "
                       r'system\); logs and checkpoints go there'):
        launch.check_work_dir_writable(str(tmp_path / 'work'))


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_train_refuses_a_read_only_work_dir(seg_config, tmp_path):
    tmp_path.chmod(0o555)
    try:
        result = run_train(seg_config, '--work-dir', tmp_path / 'work')
    finally:
        tmp_path.chmod(0o755)
    assert result.returncode == 1 and 'is not writable' in result.stderr


def test_resume_from_a_valid_but_untrusted_checkpoint_is_not_called_corrupt(tmp_path):
    from windowlab.converters.checkpoint import UntrustedCheckpointError

    torch.save({'meta': {'seed': 1}, 'args': argparse.Namespace(lr=0.1)}, tmp_path / 'iter_2.pth')
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace.*--trust-checkpoint'):
        launch.read_checkpoint_meta(str(tmp_path / 'iter_2.pth'))
