from .patch import DropPath, Mlp, PatchEmbed, PatchMerging
from .relative_position import RelativePositionBias
from .window import pad_to_multiple, shifted_window_mask, window_partition, window_reverse
from .window_attention import WindowMSA

__all__ = ['DropPath', 'Mlp', 'PatchEmbed', 'PatchMerging', 'RelativePositionBias', 'WindowMSA',
           'pad_to_multiple', 'shifted_window_mask', 'window_partition', 'window_reverse']
