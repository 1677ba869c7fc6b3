from .progress_hook import TestProgressHook
from .rng_state_hook import RNGStateHook

# tta_visualization_hook needs mmpretrain: tools/test.py imports it when it uses it.
__all__ = ['RNGStateHook', 'TestProgressHook']
