from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .interrupt_hook import InterruptCheckpointHook, TrainingInterrupted
from .rng_state_hook import RNGStateHook

__all__ = ['FiniteLossHook', 'InterruptCheckpointHook', 'NonFiniteLossError', 'RNGStateHook',
           'TrainingInterrupted']
