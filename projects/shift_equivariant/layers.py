"""Building blocks shared by the shift-equivariant (polyphase-anchored) models.

* :class:`PolyPatchEmbed` / :class:`PolyPatchMerging`: anchor with ``p`` equal to the stride,
  then a ``p x p`` stride-``p`` convolution and LayerNorm ("PolyPatch"). The first turns an
  image into tokens (stem), the second halves a token map (Swin/Twins down-sampling).
* :class:`CircularPosConv`: the PEG positional convolution (depth-wise 3x3 plus residual)
  with circular padding, so it commutes with circular shifts.
"""
from torch import nn

from windowlab.models.layers.polyphase import polyphase_anchor
from windowlab.registry import LAYERS


@LAYERS.register_module()
class PolyPatchEmbed(nn.Module):
    """Anchored non-overlapping patch embedding (image -> tokens).

    ``forward(x [B, C_in, H, W]) -> (tokens [B, H/p * W/p, C], (H/p, W/p))``; ``H`` and ``W``
    must be multiples of ``patch_size``. A circular shift of the image by ``s`` permutes the
    tokens circularly (by ``s / p`` when ``s`` is a multiple of ``p``).

    Args:
        in_channels (int): image channels.
        embed_dims (int): token channels.
        patch_size (int): patch side = stride = anchoring factor.
        norm (bool): LayerNorm (eps 1e-5) after the projection.
    """

    def __init__(self, in_channels=3, embed_dims=96, patch_size=4, norm=True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if norm else nn.Identity()

    def forward(self, x):
        x = polyphase_anchor(x, self.patch_size)[0]
        x = self.proj(x)
        hw_shape = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), hw_shape


@LAYERS.register_module()
class PolyPatchMerging(nn.Module):
    """Anchored ``2 x 2`` stride-2 convolution + LayerNorm on a token map (PolySwin's
    replacement of patch merging).

    ``forward(x [B, H*W, C], (H, W)) -> ([B, H/2 * W/2, out], (H/2, W/2))``; ``H`` and ``W``
    must be even.
    """

    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or 2 * in_channels
        self.proj = nn.Conv2d(in_channels, out_channels, 2, stride=2)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, *hw_shape)
        x = self.proj(polyphase_anchor(x, 2)[0])
        new_hw = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), new_hw


class CircularPosConv(nn.Module):
    """Conditional position encoding (PEG) with circular padding: ``t + dwconv3x3(t)``.

    ``forward(tokens [B, H*W, C], (H, W)) -> [B, H*W, C]``.
    """

    def __init__(self, embed_dims):
        super().__init__()
        self.proj = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, groups=embed_dims,
                              padding_mode='circular')

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        fmap = x.transpose(1, 2).reshape(b, c, *hw_shape)
        return (self.proj(fmap) + fmap).flatten(2).transpose(1, 2)
