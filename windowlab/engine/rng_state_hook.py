"""Save and restore the random generators with each checkpoint, so that ``--resume`` continues
the same random stream (data augmentation, drop path, proposal sampling, ...) as an
uninterrupted run."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def rng_state():
    """The python, numpy and torch (CPU and, once initialised, CUDA) generator states."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Stores the generator states in checkpoints and puts them back where an uninterrupted
    run had them: right before the first batch after the checkpoint is fetched.

    * On resume, mmengine re-seeds every generator from ``randomness.seed`` and an
      iteration-based loop then fetches (and drops) the batches already trained on, which
      runs their augmentations in the main process when ``num_workers=0``. The states are
      restored after those skipped fetches, before the first new one (epoch-based loops:
      at the start of the epoch, before its data loader iterator draws its seed).
    * Validation inside training draws from the same generators (a data loader iterator
      draws a seed); its states are saved before and restored after it, so the training
      stream does not depend on when, or whether, validation runs.

    Dataloader workers are seeded per worker by mmengine and the skipped fetches replay
    them, so with ``num_workers > 0`` the data stream is the same too.
    """

    priority = 'VERY_LOW'  # act after every other hook's before_train_epoch

    def __init__(self):
        self._pending = None
        self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint.setdefault('meta', {})['rng_state'] = rng_state()

    def after_load_checkpoint(self, runner, checkpoint):
        self._pending = checkpoint.get('meta', {}).get('rng_state')

    def before_train_epoch(self, runner):
        if self._pending is None:
            return
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is None:  # epoch-based: the epoch's iterator is created next
            self._restore()
            return

        def restore():
            loop.dataloader_iterator = iterator
            self._restore()

        loop.dataloader_iterator = _BeforeFetch(iterator, skip=runner.iter, action=restore)

    def _restore(self):
        state, self._pending = self._pending, None
        set_rng_state(state)

    def before_val(self, runner):
        self._before_val = rng_state()

    def after_val(self, runner):
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None


class _BeforeFetch:
    """Iterator proxy that calls ``action`` once, before the fetch that follows ``skip``
    fetches (those of the batches an iteration-based loop skips on resume)."""

    def __init__(self, iterator, skip, action):
        self.iterator, self.skip, self.action = iterator, skip, action

    def __iter__(self):
        return self

    def __getattr__(self, name):  # e.g. the wrapped iterator's ``epoch``
        return getattr(self.iterator, name)

    def __next__(self):
        if self.skip == 0:
            self.action()
        self.skip -= 1
        return next(self.iterator)


def _as_python_state(state):
    """``random.setstate`` wants tuples; a round trip through a checkpoint may give lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
