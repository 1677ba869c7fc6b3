from .norm_act import ConvNormAct, LayerNorm2d, build_activation_layer, build_norm_layer
from .patch import DropPath, Mlp, PatchEmbed, PatchMerging
from .relative_position import RelativePositionBias
from .window import pad_to_multiple, shifted_window_mask, window_partition, window_reverse
from .window_attention import WindowMSA

__all__ = ['ConvNormAct', 'DropPath', 'LayerNorm2d', 'Mlp', 'PatchEmbed', 'PatchMerging',
           'RelativePositionBias', 'WindowMSA', 'build_activation_layer', 'build_norm_layer',
           'pad_to_multiple', 'shifted_window_mask', 'window_partition', 'window_reverse']
