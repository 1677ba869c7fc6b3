"""Shift-equivariant vision transformers by adaptive polyphase anchoring.

Ding et al., "Reviving Shift Equivariance in Vision Transformers" (arXiv 2306.07470).
Importing this package registers the backbones ``PolyViT``, ``PolyTwins`` and ``PolySwin``
(mmpretrain, mmdet, mmseg) and the LAYERS components ``PolyPatchEmbed``,
``PolyPatchMerging``, ``PolyWindowMSA`` and ``PolySwinBlock``.
"""
from .layers import CircularPosConv, PolyPatchEmbed, PolyPatchMerging
from .poly_swin import PolySwin, PolySwinBlock, PolyWindowMSA
from .poly_twins import PolyTwins
from .poly_vit import PolyViT

__all__ = ['CircularPosConv', 'PolyPatchEmbed', 'PolyPatchMerging', 'PolySwin', 'PolySwinBlock',
           'PolyTwins', 'PolyViT', 'PolyWindowMSA']
