"""Ctrl-C (SIGINT) during training: finish the running step, save it, stop (exit code 130)."""
import os.path as osp
import signal
import sys

import torch
from mmengine import dist
from mmengine.fileio import put_text
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop


class TrainingInterrupted(KeyboardInterrupt):
    """Raised once the checkpoint of the interrupted run has been saved."""

    def __init__(self, checkpoint):
        super().__init__(f'interrupted; saved {checkpoint}')
        self.checkpoint = checkpoint


@HOOKS.register_module()
class InterruptCheckpointHook(Hook):
    """Turns the first SIGINT into a clean stop with a checkpoint.

    The signal only sets a flag (a ``KeyboardInterrupt`` in the middle of an optimizer step
    would leave half-updated weights). Iteration-based loops stop after the running
    iteration and save ``iter_<N>.pth``; epoch-based loops (whose resume restarts an epoch)
    finish the running epoch and save ``epoch_<N>.pth``. The checkpoint has everything the
    interval ones have (optimizer, schedulers, message hub, generator states), is written
    atomically, ``last_checkpoint`` names it, and :class:`TrainingInterrupted` is raised:
    ``--resume`` continues exactly as the uninterrupted run would have. A second Ctrl-C stops
    at once, as usual. In distributed runs every rank stops at the same iteration.
    tools/train.py registers this hook.
    """

    priority = 'LOWEST'  # after the CheckpointHook: the same step is never saved twice

    def __init__(self):
        self.requested = False
        self._previous = None

    def before_train(self, runner):
        self._previous = signal.signal(signal.SIGINT, self._request)

    def after_train(self, runner):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _request(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: at once
        print('\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to stop '
              'at once, without saving)', file=sys.stderr, flush=True)

    def _stop_now(self):
        flag = torch.tensor([int(self.requested)])
        if dist.is_distributed():
            dist.all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not isinstance(runner.train_loop, EpochBasedTrainLoop) and self._stop_now():
            self._save_and_stop(runner, f'iter_{runner.iter + 1}.pth', by_epoch=False)

    def after_train_epoch(self, runner):
        if isinstance(runner.train_loop, EpochBasedTrainLoop) and self._stop_now():
            self._save_and_stop(runner, f'epoch_{runner.epoch + 1}.pth', by_epoch=True)

    def _save_and_stop(self, runner, filename, by_epoch):
        path = osp.join(runner.work_dir, filename)
        if not osp.isfile(path):  # not just saved by the CheckpointHook
            runner.save_checkpoint(runner.work_dir, filename, by_epoch=by_epoch)
        if dist.is_main_process():
            put_text(path, osp.join(runner.work_dir, 'last_checkpoint'))
        raise TrainingInterrupted(path)
