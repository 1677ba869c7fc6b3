"""Building blocks shared by the shift-equivariant (polyphase-anchored) models.

* :class:`PolyPatchEmbed` / :class:`PolyPatchMerging`: anchor with ``p`` equal to the stride,
  then the core :class:`~windowlab.models.layers.patch.PatchEmbed` projection (a ``p x p``
  stride-``p`` convolution and LayerNorm, "PolyPatch"). The first turns an image into tokens
  (stem), the second halves a token map (Swin/Twins down-sampling).
* :class:`CircularPosConv`: the PEG positional convolution (depth-wise 3x3 plus residual)
  with circular padding, so it commutes with circular shifts.
"""
from torch import nn

from windowlab.models.layers.patch import PatchEmbed
from windowlab.models.layers.polyphase import polyphase_anchor
from windowlab.models.layers.window import map_to_tokens, tokens_to_map
from windowlab.registry import LAYERS


@LAYERS.register_module()
class PolyPatchEmbed(PatchEmbed):
    """Anchored non-overlapping patch embedding (image -> tokens): :class:`PatchEmbed` with
    polyphase anchoring (``p = patch_size``) in place of padding.

    ``forward(x [B, C_in, H, W]) -> (tokens [B, H/p * W/p, C], (H/p, W/p))``; ``H`` and ``W``
    must be multiples of ``patch_size``. A circular shift of the image by ``s`` permutes the
    tokens circularly (by ``s / p`` when ``s`` is a multiple of ``p``).
    """

    def forward(self, x):
        return self.embed(polyphase_anchor(x, self.patch_size)[0])


@LAYERS.register_module()
class PolyPatchMerging(PolyPatchEmbed):
    """Anchored ``2 x 2`` stride-2 convolution + LayerNorm on a token map (PolySwin's
    replacement of patch merging): :class:`PolyPatchEmbed` with ``p = 2`` on the map.

    ``forward(x [B, H*W, C], (H, W)) -> ([B, H/2 * W/2, out], (H/2, W/2))``; ``H`` and ``W``
    must be even.
    """

    def __init__(self, in_channels, out_channels=None):
        super().__init__(in_channels, out_channels or 2 * in_channels, patch_size=2)

    def forward(self, x, hw_shape):
        return super().forward(tokens_to_map(x, hw_shape))


class CircularPosConv(nn.Module):
    """Conditional position encoding (PEG) with circular padding: ``t + dwconv3x3(t)``.

    ``forward(tokens [B, H*W, C], (H, W)) -> [B, H*W, C]``.
    """

    def __init__(self, embed_dims):
        super().__init__()
        self.proj = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, groups=embed_dims,
                              padding_mode='circular')

    def forward(self, x, hw_shape):
        fmap = tokens_to_map(x, hw_shape)
        return map_to_tokens(self.proj(fmap) + fmap)
