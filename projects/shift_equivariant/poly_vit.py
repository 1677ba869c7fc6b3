"""PolyViT: a ViT whose patch embedding is polyphase-anchored (Ding et al., 2023).

Differences from timm's ViT, all needed for exact circular-shift invariance:

* the image is anchored with ``p = patch_size`` before the stride-``p`` patch projection,
  which is followed by a LayerNorm (eps 1e-5);
* there is no absolute position embedding; a circular depth-wise 3x3 positional
  convolution (:class:`CircularPosConv`) is applied to the patch tokens *before* the class
  token is prepended.

Because the only anchoring is at the stem with ``p`` equal to the stride, the patch-token
map is also exactly equivariant for circular shifts that are multiples of ``patch_size``
(it rolls by ``s / patch_size``); ``out_type='featmap'`` exposes it for dense heads.
"""
import torch
from mmengine.model import BaseModule
from torch import nn

from windowlab.models.layers.attention import attend
from windowlab.models.layers.patch import DropPath, Mlp
from windowlab.models.layers.window import tokens_to_map
from windowlab.models.utils import (DropInBackbone, init_linear_and_norm, maybe_checkpoint,
                                    resolve_arch)
from windowlab.converters.checkpoint import init_from_pretrained_cfg
from .converter import backbone_state_dict, convert_polyvit
from windowlab.registry import register_model

from .layers import CircularPosConv, PolyPatchEmbed


class Attention(nn.Module):
    """Global multi-head self-attention: ``[B, N, C] -> [B, N, C]``."""

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(
            2, 0, 3, 1, 4)
        x = attend(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class ViTBlock(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, as timm's ViT)."""

    def __init__(self, embed_dims, num_heads, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads, qkv_bias, attn_drop_rate, drop_rate)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop_rate)
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_model('PolyViT')
class PolyViT(DropInBackbone, BaseModule):
    """Polyphase-anchored Vision Transformer backbone.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` or a dict with
            ``embed_dims``, ``depth``, ``num_heads`` (and optionally ``mlp_ratio``).
        patch_size (int): patch side = stride = anchoring factor. Inputs must have sides
            that are multiples of it.
        in_channels (int): image channels.
        qkv_bias (bool): bias of the qkv projections.
        drop_rate (float): dropout after attention / MLP projections and on the tokens.
        attn_drop_rate (float): dropout on attention weights.
        drop_path_rate (float): stochastic depth, increasing linearly over the blocks.
        out_type (str): ``'cls_token'`` -> ``(cls [B, C],)`` (classification);
            ``'featmap'`` -> ``(patch tokens [B, C, H/p, W/p],)`` (dense heads);
            ``'raw'`` -> ``(all tokens [B, 1 + N, C],)``. All after the final LayerNorm.
        with_cp (bool): activation checkpointing of every block while training.
        frozen_stages (int): ``-1``: nothing; ``0``: the stem (patch embedding, positional
            convolution, class token); ``k``: also blocks ``0 .. k-1``; ``depth``: also the
            final norm. Frozen parts get no gradient and stay in eval mode in ``train()``.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=...)``
            (alone or in a list with other initialisers) accepts official
            PolyViT files and windowlab ones.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=192, depth=12, num_heads=3),
        'small': dict(embed_dims=384, depth=12, num_heads=6),
        'base': dict(embed_dims=768, depth=12, num_heads=12),
    }
    out_types = ('cls_token', 'featmap', 'raw')

    def __init__(self, arch='small', patch_size=16, in_channels=3, qkv_bias=True,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, out_type='cls_token',
                 with_cp=False, frozen_stages=-1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, self.arch_zoo)
        if out_type not in self.out_types:
            raise ValueError(f'out_type must be one of {self.out_types}, got {out_type!r}')
        embed_dims, depth = arch['embed_dims'], arch['depth']
        self.out_type = out_type
        self.patch_size = patch_size
        self.patch_embed = PolyPatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_conv = CircularPosConv(embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dims, arch['num_heads'], arch.get('mlp_ratio', 4.0), qkv_bias,
                     drop_rate, attn_drop_rate, dpr[i]) for i in range(depth))
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.depths = (depth,)
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self.norm_eval = False  # no BatchNorm
        self._check_frozen_stages(depth)
        self._freeze()

    def init_weights(self):
        if init_from_pretrained_cfg(self):
            return
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_linear_and_norm(self, trunc_normal=nn.init.trunc_normal_)  # as timm's ViT
        super().init_weights()  # init_cfg initialisers, if any

    def frozen_parts(self):
        if self.frozen_stages < 0:
            return []
        parts = [self.patch_embed, self.pos_conv, self.cls_token, self.pos_drop]
        parts += list(self.blocks[:self.frozen_stages])
        if self.frozen_stages == len(self.blocks):
            parts.append(self.norm)
        return parts

    def layer_position(self, name):
        parts = name.split('.')
        if parts[0] in ('patch_embed', 'pos_conv', 'cls_token'):
            return ('stem',)
        if parts[0] == 'blocks':
            return ('block', 0, int(parts[1]))
        return None

    @staticmethod
    def convert_pretrained(state_dict):
        """Official (``{'model': ...}``) or windowlab checkpoint -> this backbone's keys."""
        return backbone_state_dict(state_dict, convert_polyvit)

    def forward(self, x):
        """``x``: ``[B, C_in, H, W]`` -> a 1-tuple, see ``out_type``."""
        tokens, hw_shape = self.patch_embed(x)
        tokens = self.pos_conv(tokens, hw_shape)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = self.pos_drop(tokens)
        for block in self.blocks:
            tokens = maybe_checkpoint(block, tokens, with_cp=self.with_cp)
        tokens = self.norm(tokens)
        if self.out_type == 'cls_token':
            return (tokens[:, 0],)
        if self.out_type == 'featmap':
            return (tokens_to_map(tokens[:, 1:], hw_shape),)
        return (tokens,)
