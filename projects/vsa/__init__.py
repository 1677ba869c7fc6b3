"""VSA: Learning Varied-Size Window Attention in Vision Transformers (ECCV 2022).

Importing this package registers ``VSAWindowAttention`` in :data:`windowlab.registry.LAYERS`
(plug it into ``WLSwinTransformer`` with ``attn_cfg=dict(type='VSAWindowAttention')``) and the
``ViTAEv2VSA`` backbone in the mmpretrain, mmdet and mmseg model registries.
"""
from .vitaev2_vsa import VITAEV2_VSA_ARCHS, ViTAEv2VSA
from .vsa_attention import VSAWindowAttention

__all__ = ['VSAWindowAttention', 'ViTAEv2VSA', 'VITAEV2_VSA_ARCHS']
