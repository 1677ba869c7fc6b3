from .progress_hook import TestProgressHook
from .rng_state_hook import RNGStateHook
from .tta_visualization_hook import TTAVisualizationHook

__all__ = ['RNGStateHook', 'TestProgressHook', 'TTAVisualizationHook']
