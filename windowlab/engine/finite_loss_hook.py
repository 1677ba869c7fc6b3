"""Stop training loudly on a non-finite loss instead of training on NaNs for hours."""
import math
import os.path as osp

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message says where and how to resume."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises :class:`NonFiniteLossError` after the first iteration whose loss (or any loss
    term) is NaN or infinite.

    It runs before the checkpoint and logger hooks of that iteration, so no checkpoint is
    written from the bad state. The message names the iteration, the non-finite terms, the
    last good checkpoint and the command that resumes from it with a 10x lower learning
    rate.

    Args:
        stop (bool): ``False`` keeps mmengine's behaviour (training goes on) and only logs a
            warning at the first non-finite loss: ``default_hooks = dict(finite_loss=dict(
            stop=False))`` or ``--cfg-options default_hooks.finite_loss.stop=False``.
    """

    priority = 'ABOVE_NORMAL'  # before LoggerHook (BELOW_NORMAL) and CheckpointHook (VERY_LOW)

    def __init__(self, stop=True):
        self.stop = stop
        self._warned = False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {name: float(value.detach() if torch.is_tensor(value) else value)
                  for name, value in (outputs or {}).items() if 'loss' in name}
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if dist.is_distributed():  # every rank stops, or the others hang in the next all-reduce
            flag = torch.tensor([float(bool(bad))])
            dist.all_reduce(flag, op='max')
            if flag.item() and not bad:
                bad = {'loss': 'non-finite on another rank'}
        if not bad:
            return
        if self.stop:
            raise NonFiniteLossError(non_finite_message(runner, bad))
        if not self._warned:
            self._warned = True
            runner.logger.warning(f'non-finite loss at iteration {runner.iter + 1} ({bad}); '
                                  'training goes on (default_hooks.finite_loss.stop=False)')


def non_finite_message(runner, bad):
    terms = ', '.join(f'{name}={value}' for name, value in bad.items())
    last = last_checkpoint(runner.work_dir)
    lrs = runner.optim_wrapper.get_lr()
    lr = min(v for group in lrs.values() for v in group) if lrs else None
    config = runner.cfg.filename or 'CONFIG'
    if last:
        where = f'The last good checkpoint is {last}.'
        resume = f'python tools/train.py {config} --resume {last}'
    else:
        where = 'No checkpoint was saved before it.'
        resume = f'python tools/train.py {config} --overwrite'
    lower = f' --cfg-options optim_wrapper.optimizer.lr={lr / 10:.3g}' if lr else ''
    return (f'non-finite loss at iteration {runner.iter + 1}: {terms}. Training stopped; no '
            f'checkpoint was written from this state. {where} Restart with a lower learning '
            f'rate (or gradient clipping, optim_wrapper.clip_grad), e.g.\n  {resume}{lower}\n'
            'To train through non-finite losses anyway, set default_hooks.finite_loss.stop=False.')


def last_checkpoint(work_dir):
    """The path that ``work_dir/last_checkpoint`` names, or None."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        path = f.read().strip()
    return path or None
