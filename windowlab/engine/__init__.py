from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .interrupt_hook import InterruptCheckpointHook, TrainingInterrupted
from .progress_hook import TestProgressHook
from .rng_state_hook import RNGStateHook

# tta_visualization_hook needs mmpretrain: tools/test.py imports it when it uses it.
__all__ = ['FiniteLossHook', 'InterruptCheckpointHook', 'NonFiniteLossError', 'RNGStateHook',
           'TestProgressHook', 'TrainingInterrupted']
