"""Reliability of training runs through tools/train.py (subprocesses, as a user runs them),
on the toy config of each task with its own schedule, sampler and augmentation:

* a run killed with SIGKILL mid-training resumes with ``--resume`` from its last checkpoint
  and ends bit-exactly with the weights, optimizer and scheduler state of an uninterrupted
  run (classification: epoch-based loop; detection: iteration-based over several epochs of
  a DefaultSampler; segmentation: InfiniteSampler with 2 dataloader workers and validation
  during training), also without a fixed seed (the resumed run takes the checkpoint's);
* Ctrl-C (SIGINT to the process group) saves the current iteration, exits with 130 and the
  resumed run equals the uninterrupted one;
* a non-finite loss stops the run (exit 1) with a message, and no checkpoint of the bad state;
* a 2-process torchrun (gloo, CPU) training run works.
"""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg, redirect_data

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    'classification': REPO / 'configs/swin/swin-mini-p4-w7_toy-in.py',
    'detection': REPO / 'configs/swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py',
    'segmentation': REPO / 'configs/swin/upernet_swin-mini-p4-w7_toy-ade.py',
}

HOOKS = '''
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
    make_toy_data(str(root), names=('toy-ade', 'toy-in', 'toy-coco'), num_train=8, num_val=2)
    return root


def run_train(config, *args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        [str(config.parent), os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run([sys.executable, str(REPO / 'tools/train.py'), str(config), *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f'train.py failed ({result.returncode}):\n{result.stderr[-4000:]}')
    return result


def user_config(task, toy_root, work_dir, path, seed=None, kill_at=None, **cfg_options):
    """The task's toy config as a user runs it, shortened: 3 epochs of 4 iterations with a
    checkpoint after each (classification) or 6 iterations with a checkpoint every 2; a log
    line every iteration."""
    cfg = Config.fromfile(str(CONFIGS[task]))
    redirect_data(cfg, toy_root)
    cfg.work_dir = str(work_dir)
    if task == 'classification':
        cfg.train_cfg.update(max_epochs=3, val_interval=10)
        cfg.default_hooks.checkpoint.interval = 1
    else:
        cfg.train_cfg.update(max_iters=6, val_interval=2 if task == 'segmentation' else 10)
        cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.pop('visualization', None)
    if task == 'segmentation':
        cfg.train_dataloader.update(num_workers=2, persistent_workers=True)
    if seed is not None:
        cfg.randomness = dict(seed=seed)
    if kill_at:
        (Path(path).parent / 'killer.py').write_text(HOOKS)
        cfg.custom_imports = dict(imports=['killer'], allow_failed_imports=False)
        cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='KillAtIter', at=kill_at)]
    cfg.merge_from_dict(cfg_options)
    cfg.dump(str(path))
    return Path(path)


def final_checkpoint(work_dir):
    path = (Path(work_dir) / 'last_checkpoint').read_text().strip()
    return path, torch.load(path, map_location='cpu', weights_only=True)


def assert_same_training_state(got, expected):
    assert got['meta']['iter'] == expected['meta']['iter']
    sd, ref = got['state_dict'], expected['state_dict']
    different = [k for k in ref if not torch.equal(sd[k], ref[k])]
    assert not different, f'{len(different)} of {len(ref)} tensors differ, e.g. {different[:3]}'
    assert got['param_schedulers'] == expected['param_schedulers']
    for slot, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(got['optimizer']['state'][slot][name], value), (slot, name)


@pytest.mark.parametrize('task,kill_at,last_good', [('classification', 6, 'epoch_1.pth'),
                                                     ('detection', 5, 'iter_4.pth')])
def test_sigkilled_run_without_seed_resumes_bit_exactly(task, kill_at, last_good, toy_root,
                                                        tmp_path):
    crashed = tmp_path / 'crashed'
    killed = run_train(user_config(task, toy_root, crashed, tmp_path / 'killed.py',
                                   kill_at=kill_at), check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (crashed / 'last_checkpoint').read_text().strip().endswith(last_good)
    seed = torch.load(crashed / last_good, map_location='cpu', weights_only=True)['meta']['seed']
    resumed = run_train(user_config(task, toy_root, crashed, tmp_path / 'resume.py'), '--resume')
    assert 'resumed epoch' in resumed.stdout + resumed.stderr
    # the uninterrupted run, with the seed that the crashed run drew
    straight = tmp_path / 'straight'
    run_train(user_config(task, toy_root, straight, tmp_path / 'straight.py', seed=seed))
    assert_same_training_state(final_checkpoint(crashed)[1], final_checkpoint(straight)[1])


@pytest.fixture(scope='module')
def straight_segmentation(toy_root, tmp_path_factory):
    """An uninterrupted segmentation run (seed 0) that the interrupted ones must equal."""
    tmp = tmp_path_factory.mktemp('straight-seg')
    run_train(user_config('segmentation', toy_root, tmp / 'work', tmp / 'straight.py', seed=0))
    return final_checkpoint(tmp / 'work')[1]


def test_sigkilled_segmentation_run_resumes_bit_exactly(toy_root, tmp_path, straight_segmentation):
    crashed = tmp_path / 'crashed'
    killed = run_train(user_config('segmentation', toy_root, crashed, tmp_path / 'killed.py',
                                   seed=0, kill_at=5), check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (crashed / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')
    resumed = run_train(user_config('segmentation', toy_root, crashed, tmp_path / 'resume.py',
                                    seed=0), '--resume')
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert int(re.search(r'Iter\(train\) \[\s*(\d+)/6\]', log).group(1)) == 5
    assert_same_training_state(final_checkpoint(crashed)[1], straight_segmentation)


def test_ctrl_c_saves_the_current_iteration_and_resumes_bit_exactly(toy_root, tmp_path,
                                                                     straight_segmentation):
    work = tmp_path / 'work'
    config = user_config('segmentation', toy_root, work, tmp_path / 'seg.py', seed=0)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, str(REPO / 'tools/train.py'), str(config)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    log = []
    for line in proc.stdout:  # Ctrl-C in a terminal: SIGINT to the whole process group
        log.append(line)
        if 'Iter(train) [1/6]' in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    log.extend(proc.stdout)
    assert proc.wait(timeout=600) == 130, ''.join(log)[-3000:]
    text = ''.join(log)
    stopped = int(re.findall(r'Iter\(train\) \[\s*(\d+)/6\]', text)[-1])
    assert stopped < 6
    saved = work / f'iter_{stopped}.pth'
    assert f'interrupted: saved {saved}' in text and '--resume' in text
    assert (work / 'last_checkpoint').read_text().strip() == str(saved)
    assert not list(work.glob('.*.tmp'))  # written atomically
    run_train(config, '--resume')
    assert_same_training_state(final_checkpoint(work)[1], straight_segmentation)


def test_non_finite_loss_stops_the_run_loudly(toy_root, tmp_path):
    work = tmp_path / 'work'
    config = user_config('classification', toy_root, work, tmp_path / 'nan.py',
                         optim_wrapper=dict(optimizer=dict(lr=1e6)),
                         train_cfg=dict(max_epochs=8))
    result = run_train(config, check=False)
    assert result.returncode == 1, result.stderr[-3000:]
    message = result.stderr[result.stderr.index('windowlab: non-finite loss'):]
    bad = int(re.search(r'non-finite loss at iteration (\d+): loss=nan', message).group(1))
    assert 'Training stopped; no checkpoint was written from this state' in message
    assert 'lower learning rate' in message and 'optim_wrapper.optimizer.lr=' in message
    assert 'default_hooks.finite_loss.stop=False' in message
    saved = sorted(work.glob('epoch_*.pth'))
    assert all(int(p.stem.split('_')[1]) < bad for p in saved)
    if saved:
        assert f'--resume {work / saved[-1].name}' in message
    for path in saved:  # every checkpoint is from before the loss went bad
        state = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    # the opt-out keeps mmengine's behaviour: the run goes on and exits 0
    opt_out = run_train(config, '--overwrite', '--cfg-options', 'default_hooks.finite_loss.stop=False')
    assert 'loss: nan' in opt_out.stdout + opt_out.stderr and 'training goes on' in opt_out.stdout


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
