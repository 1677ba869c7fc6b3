"""Patch embedding and patch merging (hierarchical down-sampling) of window transformers."""
import torch
from torch import nn

from ...registry import LAYERS
from .norm_act import build_activation_layer
from .window import pad_to_multiple


@LAYERS.register_module()
class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches -> tokens.

    The image is zero-padded at the bottom/right to a multiple of ``patch_size``.
    ``forward(x [B, C_in, H, W]) -> (tokens [B, H/p * W/p, C], (H/p, W/p))``.
    """

    def __init__(self, in_channels=3, embed_dims=96, patch_size=4, norm=True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if norm else nn.Identity()

    def forward(self, x):
        x, _ = pad_to_multiple(x, self.patch_size, hw_dims=(2, 3))
        return self.embed(x)

    def embed(self, x):
        """Projection of an image whose sides are multiples of ``patch_size`` -> tokens."""
        x = self.proj(x)
        hw_shape = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), hw_shape


@LAYERS.register_module()
class PatchMerging(nn.Module):
    """``s x s`` neighbour concat -> LayerNorm(s*s*C) -> Linear(s*s*C, out, no bias).

    Sides that are not multiples of ``stride`` are zero-padded at the bottom/right. The
    neighbours are concatenated row offset fastest: ``(0,0), (1,0), (0,1), (1,1)`` for the
    official ``stride=2``. ``norm=False`` drops the LayerNorm (mmdet/mmseg ``patch_norm``).
    ``forward(x [B, H*W, C], (H, W)) -> ([B, ceil(H/s)*ceil(W/s), out], new_hw)``.
    """

    def __init__(self, in_channels, out_channels=None, stride=2, norm=True):
        super().__init__()
        out_channels = out_channels or 2 * in_channels
        self.stride = stride
        self.norm = nn.LayerNorm(stride**2 * in_channels) if norm else nn.Identity()
        self.reduction = nn.Linear(stride**2 * in_channels, out_channels, bias=False)

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        h, w = hw_shape
        s = self.stride
        x, _ = pad_to_multiple(x.view(b, h, w, c), s)
        x = torch.cat([x[:, i::s, j::s] for j in range(s) for i in range(s)], -1)
        new_hw = tuple(x.shape[1:3])
        return self.reduction(self.norm(x.flatten(1, 2))), new_hw


class Mlp(nn.Sequential):
    """``Linear(C, hidden) -> GELU -> Dropout -> Linear(hidden, C) -> Dropout`` on tokens.

    ``act_cfg`` (an activation config, e.g. ``dict(type='ReLU')``, see
    :func:`~.norm_act.build_activation_layer`) replaces the GELU.
    """

    def __init__(self, in_features, hidden_features, drop=0.0, act_cfg=None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU() if act_cfg is None else build_activation_layer(act_cfg)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)


def drop_path(x, p, training):
    """Stochastic depth: drop whole residual branches per sample with probability ``p``."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        return drop_path(x, self.p, self.training)

    def extra_repr(self):
        return f'p={self.p}'
