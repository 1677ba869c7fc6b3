"""BiFormer backbone (Zhu et al., "BiFormer: Vision Transformer with Bi-Level Routing Attention",
CVPR 2023), reproducing the released T/S/B checkpoints (official code: rayleizhu/BiFormer).

Layout: a conv stem (stride 4) and three stride-2 conv down-samplings, each followed by a stage of
blocks ``x + DWConv3x3(x); x + attn(LN(x)); x + MLP(LN(x))``. Stages 1-3 use bi-level routing
attention (:class:`~.bra.BiLevelRoutingAttention`, built from ``attn_cfg``),
stage 4 global attention (:class:`~.bra.GlobalAttentionLCE`, 8 heads).

The two released forms are two settings of the same backbone:

* classification (``models/biformer.py``): ``out_indices=(3,)``, ``out_norm_cfg=dict(type='BN')``
  (the final BatchNorm2d) and ``n_win=7`` at 224x224; pair it with mmpretrain's
  ``GlobalAveragePooling`` and ``LinearClsHead``;
* detection / segmentation (``BiFormer_mm``): ``out_indices=(0, 1, 2, 3)``,
  ``out_norm_cfg=dict(type='LN2d')`` (its ``extra_norms``, applied to the returned maps only),
  ``auto_pad=True``, ``n_win=16`` (COCO) or ``8`` (ADE20K) and ``norm_eval=True``.
"""
import copy

import torch
from mmengine.model import BaseModule
from torch import nn

from .converter import convert_biformer
from windowlab.converters.checkpoint import (drop_unfit_output_norms, init_from_pretrained_cfg,
                                             pretrained_final_norm)
from windowlab.models.layers.norm_act import build_norm_layer
from windowlab.models.layers.patch import DropPath, Mlp
from windowlab.models.utils import (DropInBackbone, init_linear_and_norm, maybe_checkpoint,
                                    resolve_arch)
from windowlab.registry import LAYERS, register_model

from . import bra  # noqa: F401  (registers the attention layers)

# Released variants. Stages 1-3: num_heads = C / 32; stage 4 (global): the fixed 8 heads.
BIFORMER_ARCHS = {
    'tiny': dict(embed_dims=(64, 128, 256, 512), depths=(2, 2, 8, 2), num_heads=(2, 4, 8, 8)),
    'small': dict(embed_dims=(64, 128, 256, 512), depths=(4, 4, 18, 4), num_heads=(2, 4, 8, 8)),
    'base': dict(embed_dims=(96, 192, 384, 768), depths=(4, 4, 18, 4), num_heads=(3, 6, 12, 8)),
}


def build_out_norm(cfg, channels):
    """The norm of a returned map; ``LN2d`` defaults to ``eps=1e-6``, as ``BiFormer_mm``."""
    if cfg['type'] == 'LN2d':
        cfg = dict(dict(eps=1e-6), **cfg)
    return build_norm_layer(cfg, channels)[1]


class BiFormerBlock(nn.Module):
    """``x + DWConv3x3(x)``, then pre-norm attention and MLP on ``[N, C, H, W]`` maps.

    Args:
        embed_dims (int): channels ``C``.
        attn_cfg (dict): attention from ``LAYERS``, acting on ``[N, H, W, C]``.
        mlp_ratio (float): MLP hidden width / ``C``.
        drop_path (float): stochastic depth of both residual branches.
    """

    def __init__(self, embed_dims, attn_cfg, mlp_ratio=3, drop_path=0.0):
        super().__init__()
        self.cpe = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, groups=embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = LAYERS.build(attn_cfg)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, int(mlp_ratio * embed_dims))  # no dropout, as released
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = (x + self.cpe(x)).permute(0, 2, 3, 1)  # [N, H, W, C]
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.permute(0, 3, 1, 2)


class ConvNorm(nn.Sequential):
    """``Conv3x3(stride 2, bias) -> norm``: BiFormer's down-sampling."""

    def __init__(self, in_channels, out_channels, norm_cfg):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]


class BiFormerStem(nn.Sequential):
    """``ConvNorm(C_in, C/2) -> GELU -> ConvNorm(C/2, C)``: stride 4 in total."""

    def __init__(self, in_channels, out_channels, norm_cfg):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels // 2, 3, stride=2, padding=1)
        self.norm1 = build_norm_layer(norm_cfg, out_channels // 2)[1]
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, 3, stride=2, padding=1)
        self.norm2 = build_norm_layer(norm_cfg, out_channels)[1]


@register_model()
class BiFormer(DropInBackbone, BaseModule):
    """BiFormer backbone for classification, detection and segmentation.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` or a dict with ``embed_dims``,
            ``depths`` and ``num_heads`` (4 values each; the stage with ``topk == -1`` is global).
        in_channels (int): image channels.
        n_win (int): BRA regions per side (7 for 224 classification, 16 COCO, 8 ADE20K).
        topks (tuple[int]): routed regions per stage; ``-1`` makes the stage global attention
            with LCE (the released models: ``(1, 4, 16, -1)``).
        mlp_ratio (float): MLP hidden width / embed width.
        auto_pad (bool): let BRA pad maps that are not multiples of ``n_win`` (dense tasks).
        drop_path_rate (float): stochastic depth, rising linearly over the blocks to this value.
        out_indices (tuple[int]): stages whose (normalised) outputs are returned.
        out_norm_cfg (dict): norm of each returned map, ``norm{i}``: ``dict(type='BN')`` is the
            classifier's final BatchNorm2d, ``dict(type='LN2d')`` the dense ``extra_norms``.
            Only the returned maps are normalised; the next stage gets the raw map.
        attn_cfg (dict): BRA component from ``LAYERS``; the backbone fills in ``embed_dims,
            num_heads, n_win, topk, auto_pad`` (e.g. ``dict(type='BiLevelRoutingAttention',
            impl='gather')`` for the released gather).
        norm_cfg (dict): norm of the stem and down-sampling (``BN``; ``SyncBN`` for training).
        norm_eval (bool): keep BatchNorm layers in eval mode while training (dense configs).
        with_cp (bool): activation checkpointing of every block while training.
        frozen_stages (int): ``-1``: nothing; ``0``: the stem; ``k``: also stages
            ``0 .. k-1``, the down-sampling in front of each and their output norms. Frozen
            parts get no gradient and stay in eval mode in ``train()``.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=...,
            final_norm=None)`` (alone or in a list with other initialisers) accepts official
            classification (``{'model': ...}``) and detection/segmentation (``backbone.*``)
            files and windowlab ones (see :func:`~.converter.convert_biformer`);
            ``final_norm='norm3'`` puts an official classifier's final BatchNorm there (dropped
            by default).
    """

    def __init__(self, arch='small', in_channels=3, n_win=7, topks=(1, 4, 16, -1), mlp_ratio=3,
                 auto_pad=False, drop_path_rate=0.0, out_indices=(3,),
                 out_norm_cfg=dict(type='BN'), attn_cfg=dict(type='BiLevelRoutingAttention'),
                 norm_cfg=dict(type='BN'), norm_eval=False, with_cp=False, frozen_stages=-1,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, BIFORMER_ARCHS)
        embed_dims, depths, num_heads = arch['embed_dims'], arch['depths'], arch['num_heads']
        if not len(embed_dims) == len(depths) == len(num_heads) == len(topks) == 4:
            raise ValueError('embed_dims, depths, num_heads and topks need 4 values each')
        self.out_indices = tuple(i % 4 for i in out_indices)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self._check_frozen_stages(4)
        self.depths = tuple(depths)
        self.num_features = list(embed_dims)

        self.stem = BiFormerStem(in_channels, embed_dims[0], norm_cfg)
        self.downsamples = nn.ModuleList(
            ConvNorm(embed_dims[i], embed_dims[i + 1], norm_cfg) for i in range(3))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (dims, depth, heads, topk) in enumerate(zip(embed_dims, depths, num_heads, topks)):
            if topk == -1:
                stage_attn = dict(type='GlobalAttentionLCE', embed_dims=dims, num_heads=heads)
            else:
                stage_attn = dict(embed_dims=dims, num_heads=heads, n_win=n_win, topk=topk,
                                  auto_pad=auto_pad)
                stage_attn.update(copy.deepcopy(attn_cfg))
            first = sum(depths[:i])
            self.stages.append(nn.Sequential(*[
                BiFormerBlock(dims, stage_attn, mlp_ratio, rates[first + j])
                for j in range(depth)]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_out_norm(out_norm_cfg, embed_dims[i]))
        self._freeze()

    def init_weights(self):
        if init_from_pretrained_cfg(self, optional=[f'norm{i}.' for i in self.out_indices]):
            return
        init_linear_and_norm(self)  # the official init
        super().init_weights()  # init_cfg initialisers, if any

    def convert_pretrained(self, state_dict):
        """Any supported BiFormer layout -> this backbone's keys.

        An official classifier's final BatchNorm goes where ``init_cfg['final_norm']`` says
        (``'norm3'`` to fine-tune the classification form) and is dropped by default, as in
        ``BiFormer_mm``. windowlab files load as themselves; only output norms this backbone
        has no place for (e.g. a classifier's BatchNorm for a dense LN2d) are dropped, logged.
        """
        converted = convert_biformer(state_dict, final_norm=pretrained_final_norm(self))
        return drop_unfit_output_norms(self, converted)

    def forward(self, x):
        """``[N, C_in, H, W]`` -> tuple of ``[N, C_i, H_i, W_i]`` for ``i`` in ``out_indices``
        (``H_i = ceil(H / 2**(i+2))``)."""
        outs = []
        for i, stage in enumerate(self.stages):
            x = self.stem(x) if i == 0 else self.downsamples[i - 1](x)
            for block in stage:
                x = maybe_checkpoint(block, x, with_cp=self.with_cp)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).contiguous())
        return tuple(outs)

    def frozen_parts(self):
        if self.frozen_stages < 0:
            return []
        parts = [self.stem]
        for i in range(self.frozen_stages):
            parts += [self.stages[i]] + ([self.downsamples[i - 1]] if i else [])
            if i in self.out_indices:
                parts.append(getattr(self, f'norm{i}'))
        return parts

    def layer_position(self, name):
        parts = name.split('.')
        if parts[0] == 'stem':
            return ('stem',)
        if parts[0] == 'stages':
            return ('block', int(parts[1]), int(parts[2]))
        if parts[0] == 'downsamples':
            return ('downsample', int(parts[1]))
        return None
