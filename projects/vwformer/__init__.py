"""VWFormer (ICLR 2024): varying window attention and the VWFormer decode head for mmseg."""
from .varying_window_attention import VaryingWindowAttention
from .layer_decay import HierarchicalLayerDecayOptimizerConstructor
from .vw_head import VWHead

__all__ = ['HierarchicalLayerDecayOptimizerConstructor', 'VaryingWindowAttention', 'VWHead']

