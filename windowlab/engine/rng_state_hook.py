"""Save and restore the random generators with each checkpoint, so that ``--resume`` continues
the same random stream (drop path, proposal sampling, ...) as an uninterrupted run."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Stores the python, numpy and torch (CPU and CUDA) generator states in checkpoints.

    On resume, mmengine re-seeds every generator from ``randomness.seed``; this hook puts
    back the states of the checkpoint right before the first resumed iteration. Data
    augmentation runs in dataloader workers, which mmengine seeds per worker: with
    ``num_workers > 0`` the data stream of a resumed run is the same too.
    """

    priority = 'VERY_LOW'  # restore after every other hook's before_train_iter

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint):
        state = dict(python=random.getstate(), numpy=np.random.get_state(),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint):
        self._pending = checkpoint.get('meta', {}).get('rng_state')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])


def _as_python_state(state):
    """``random.setstate`` wants tuples; a round trip through a checkpoint may give lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
