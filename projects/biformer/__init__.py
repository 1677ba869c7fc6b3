"""BiFormer: Vision Transformer with Bi-Level Routing Attention (Zhu et al., CVPR 2023).

Registers ``BiLevelRoutingAttention`` and ``GlobalAttentionLCE`` in ``windowlab.registry.LAYERS``
and the ``BiFormer`` backbone in the mmpretrain/mmdet/mmseg model registries.
"""
from .bra import BiLevelRoutingAttention, GlobalAttentionLCE, gather_attention, routed_attention
from .biformer import BIFORMER_ARCHS, BiFormer

__all__ = ['BiLevelRoutingAttention', 'GlobalAttentionLCE', 'routed_attention',
           'gather_attention', 'BiFormer', 'BIFORMER_ARCHS']
