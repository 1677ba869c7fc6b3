"""Reliability of training runs through tools/train.py (subprocesses, as a user runs them):

* a run killed with SIGKILL mid-training resumes with ``--resume`` from its last checkpoint
  and ends with exactly the weights of an uninterrupted run (iteration, optimizer, scheduler,
  data order and random generators all continue);
* a 2-process torchrun (gloo, CPU) training run works.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'configs/swin/upernet_swin-mini-p4-w7_toy-ade.py'

KILLER = '''
import os, signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIter(Hook):
    """SIGKILL the training process after iteration ``at`` (a crash, no clean-up)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy-data')
    make_toy_data(str(root), names=('toy-ade', 'toy-in'), num_train=8, num_val=2)
    return root


def run_train(config, *args, env_extra=None, check=True):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(config.parent), **(env_extra or {}))
    result = subprocess.run([sys.executable, str(REPO / 'tools/train.py'), str(config), *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f'train.py failed ({result.returncode}):\n{result.stderr[-4000:]}')
    return result


def write_config(toy_root, work_dir, path, kill_at=None):
    cfg = quick_training_cfg(CONFIG, toy_root, work_dir, iters=6, checkpoint_interval=2, num_workers=1)
    cfg.model.backbone.drop_path_rate = 0.2  # random generators matter during training
    if kill_at:
        cfg.custom_imports = dict(imports=['killer'], allow_failed_imports=False)
        cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='KillAtIter', at=kill_at)]
    cfg.dump(str(path))
    return path


def final_weights(work_dir):
    ckpt = torch.load(Path(work_dir) / 'iter_6.pth', map_location='cpu', weights_only=True)
    return ckpt['state_dict'], ckpt


def test_sigkilled_run_resumes_to_the_same_weights(toy_root, tmp_path):
    (tmp_path / 'killer.py').write_text(KILLER)
    straight = tmp_path / 'straight'
    run_train(write_config(toy_root, straight, tmp_path / 'straight.py'))

    crashed = tmp_path / 'crashed'
    killed = run_train(write_config(toy_root, crashed, tmp_path / 'killed.py', kill_at=5), check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (crashed / 'iter_4.pth').exists() and not (crashed / 'iter_6.pth').exists()
    assert (crashed / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')

    resumed = run_train(write_config(toy_root, crashed, tmp_path / 'resume.py'), '--resume')
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    first_iter = int(re.search(r'Iter\(train\) \[\s*(\d+)/6\]', log).group(1))
    assert first_iter == 5

    expected, straight_ckpt = final_weights(straight)
    got, resumed_ckpt = final_weights(crashed)
    for key in expected:
        assert torch.allclose(got[key], expected[key], atol=1e-6), key
    # optimizer and scheduler state continued too
    assert resumed_ckpt['param_schedulers'] == straight_ckpt['param_schedulers']
    exp_avg = straight_ckpt['optimizer']['state'][0]['exp_avg']
    assert torch.allclose(resumed_ckpt['optimizer']['state'][0]['exp_avg'], exp_avg, atol=1e-6)


def test_two_process_torchrun_on_cpu(toy_root, tmp_path):
    cfg = quick_training_cfg(REPO / 'configs/swin/swin-mini-p4-w7_toy-in.py', toy_root,
                             tmp_path / 'work', iters=4, checkpoint_interval=4)
    cfg.dump(str(tmp_path / 'dist.py'))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        ['bash', str(REPO / 'tools/dist_train.sh'), str(tmp_path / 'dist.py'), '2'],
        cwd=REPO, env=dict(env, PORT='29533'), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert re.search(r"'backend': 'gloo'|backend='gloo'|gloo", log)
    assert (tmp_path / 'work' / 'iter_4.pth').exists()
