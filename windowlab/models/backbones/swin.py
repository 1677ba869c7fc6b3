"""Swin Transformer backbone with a replaceable window attention.

``WLSwinTransformer`` is windowlab's own Swin (Liu et al., ICCV 2021). The attention of every
block is built from ``attn_cfg`` through :data:`windowlab.registry.LAYERS`, so papers plug
their attention into the same backbone by config (``WindowMSA`` by default, ``VSAWindowAttention``
for Swin-VSA, anchored attention for PolySwin); the block, the patch embedding and the
down-sampling are replaceable the same way (``block_cfg``, ``patch_embed_cfg``, ``downsample_cfg``).

It reproduces both official Swin codes, numerically (see tests/test_swin_parity.py):

* classification (microsoft/Swin-Transformer): ``attn_cfg=dict(type='WindowMSA',
  adaptive_window=True)`` and ``out_indices=(3,)``;
* detection / segmentation (Swin-Transformer-Object-Detection, mmdet, mmseg): the default.
"""
import copy
import logging
import math
import re

from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn

from ...converters.checkpoint import (drop_unfit_output_norms, init_from_pretrained_cfg,
                                      pretrained_final_norm)
from ...converters.swin import convert_swin
from ...registry import LAYERS, register_model
from ..layers.patch import DropPath, Mlp
from ..utils import init_linear_and_norm, resolve_arch

SWIN_ARCHS = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


@LAYERS.register_module()
class SwinBlock(nn.Module):
    """``x + DropPath(attn(LN(x))); x + DropPath(MLP(LN(x)))`` on ``[B, H*W, C]`` tokens."""

    def __init__(self, embed_dims, attn_cfg, mlp_ratio=4.0, drop=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LAYERS.build(attn_cfg)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)

    def forward(self, x, hw_shape):
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinStage(nn.Module):
    """``depth`` blocks (odd ones shifted) and an optional down-sampling at the end."""

    def __init__(self, embed_dims, num_heads, depth, window_size, attn_cfg, block_cfg,
                 shift_windows, mlp_ratio, qkv_bias, drop, attn_drop, drop_paths, downsample_cfg):
        super().__init__()
        blocks = []
        for i in range(depth):
            cfg = dict(embed_dims=embed_dims, num_heads=num_heads, window_size=window_size,
                       shift_size=window_size // 2 if shift_windows and i % 2 else 0,
                       qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
            cfg.update(copy.deepcopy(attn_cfg))
            blocks.append(LAYERS.build(dict(embed_dims=embed_dims, attn_cfg=cfg, mlp_ratio=mlp_ratio,
                                            drop=drop, drop_path=drop_paths[i], **block_cfg)))
        self.blocks = nn.ModuleList(blocks)
        self.downsample = None
        if downsample_cfg is not None:
            self.downsample = LAYERS.build(dict(in_channels=embed_dims, out_channels=2 * embed_dims,
                                                **downsample_cfg))

    def forward(self, x, hw_shape):
        """Returns ``(stage_out, stage_hw, next_in, next_hw)``."""
        for block in self.blocks:
            x = block(x, hw_shape)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        down, down_hw = self.downsample(x, hw_shape)
        return x, hw_shape, down, down_hw


@register_model()
class WLSwinTransformer(BaseModule):
    """Swin Transformer (windowlab) for classification, detection and segmentation.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` or a dict with
            ``embed_dims``, ``depths`` and ``num_heads``.
        in_channels (int): image channels.
        patch_size (int): stride of the patch embedding.
        window_size (int | tuple[int]): attention window side, or one per stage. The
            official classification code builds a stage whose map is not larger than the
            window for the map's side (window 14 at 224: ``(14, 14, 14, 7)``), and so does
            its relative position table; give the per-stage sides to load such files.
        mlp_ratio (float): MLP hidden width / embed width.
        qkv_bias (bool): bias in the qkv projections.
        drop_rate (float): dropout after projections/MLP.
        attn_drop_rate (float): dropout on attention weights.
        drop_path_rate (float): stochastic depth, rising linearly over all blocks to this value.
        out_indices (tuple[int]): stages whose outputs are returned (each after its own
            LayerNorm ``norm{i}``), as ``[B, C_i, H_i, W_i]`` maps.
        attn_cfg (dict): attention component from ``LAYERS``; the backbone fills in
            ``embed_dims, num_heads, window_size, shift_size, qkv_bias, attn_drop, proj_drop``
            unless the dict sets them.
        block_cfg (dict): the block from ``LAYERS``; gets ``embed_dims, attn_cfg, mlp_ratio,
            drop, drop_path``.
        shift_windows (bool): shift odd blocks by ``window_size // 2`` (Swin) or never.
        patch_embed_cfg (dict): patch embedding component from ``LAYERS``.
        downsample_cfg (dict): down-sampling component from ``LAYERS``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., final_norm=None)``
            accepts official Swin files (``{'model': ...}``), mmdet/mmseg/mmpretrain Swin
            checkpoints and windowlab ones (see :func:`windowlab.converters.swin.convert_swin`);
            ``final_norm='norm3'`` puts an official classifier's final norm there (dropped by
            default). Bias tables trained for another window are resized (bicubic).
    """

    def __init__(self, arch='tiny', in_channels=3, patch_size=4, window_size=7, mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 out_indices=(0, 1, 2, 3), attn_cfg=dict(type='WindowMSA'),
                 block_cfg=dict(type='SwinBlock'), shift_windows=True,
                 patch_embed_cfg=dict(type='PatchEmbed'), downsample_cfg=dict(type='PatchMerging'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, SWIN_ARCHS)
        embed_dims, depths, num_heads = arch['embed_dims'], arch['depths'], arch['num_heads']
        num_stages = len(depths)
        self.out_indices = tuple(i % num_stages for i in out_indices)
        if len(set(self.out_indices)) != len(out_indices):
            raise ValueError(f'out_indices {out_indices} repeat a stage')
        self.num_stages = num_stages
        windows = tuple(window_size) if isinstance(window_size, (tuple, list)) else \
            (window_size,) * num_stages
        if len(windows) != num_stages:
            raise ValueError(f'window_size {window_size} needs one side per stage ({num_stages})')
        self.patch_embed = LAYERS.build(dict(in_channels=in_channels, embed_dims=embed_dims,
                                             patch_size=patch_size, **patch_embed_cfg))
        self.drop_after_pos = nn.Dropout(drop_rate)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        self.num_features = []
        for i, depth in enumerate(depths):
            dims = embed_dims * 2 ** i
            self.stages.append(SwinStage(
                dims, num_heads[i], depth, windows[i], attn_cfg, block_cfg, shift_windows, mlp_ratio,
                qkv_bias, drop_rate, attn_drop_rate, rates[sum(depths[:i]):sum(depths[:i + 1])],
                downsample_cfg if i < num_stages - 1 else None))
            self.num_features.append(dims)
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        self.window_sizes = windows

    def adapt_loaded_state(self, state_dict, prefix=''):
        """Warn before the tables are resized if the file's stages were built for different
        windows while this model has one: an official classifier whose late stages shrank
        their window to the map (window 14 at 224), which loads unchanged with per-stage
        ``window_size``. Nothing is changed here; the tables resize themselves."""
        pattern = re.compile(
            re.escape(prefix) + r'stages\.(\d+)\.blocks\.\d+\.attn\.rel_pos\.table$')
        file_windows = dict(enumerate(self.window_sizes))
        for key, value in state_dict.items():
            match = pattern.match(key)
            if match and value.dim() == 2 and int(match.group(1)) < self.num_stages:
                file_windows[int(match.group(1))] = (math.isqrt(value.shape[0]) + 1) // 2
        file_windows = tuple(file_windows[i] for i in range(self.num_stages))
        if len(set(file_windows)) > 1 and len(set(self.window_sizes)) == 1 \
                and file_windows != self.window_sizes:
            print_log(f'the checkpoint\'s stages were built for windows {file_windows}, this '
                      f'model for {self.window_sizes}: its tables are resized. An official '
                      'classifier shrinks the window of stages whose map is smaller; build with '
                      f'window_size={file_windows} to load it unchanged', logger='current',
                      level=logging.WARNING)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.adapt_loaded_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self):
        if init_from_pretrained_cfg(self, optional=[f'norm{i}.' for i in self.out_indices]):
            return
        init_linear_and_norm(self)
        super().init_weights()

    def convert_pretrained(self, state_dict):
        """Any supported Swin layout -> this backbone's keys.

        An official classifier's final ``norm`` goes where ``init_cfg['final_norm']`` says
        (e.g. ``'norm3'`` to fine-tune a classifier) and is dropped by default, as in the
        official detection code and mmdet/mmseg, whatever ``out_indices`` is. windowlab and
        OpenMMLab files load as themselves; only their output norms this backbone has no
        place for are dropped (logged).
        """
        converted = convert_swin(state_dict, final_norm=pretrained_final_norm(self))
        return drop_unfit_output_norms(self, converted)

    def forward(self, x):
        """``[B, C_in, H, W]`` -> tuple of ``[B, C_i, H_i, W_i]`` for ``i`` in ``out_indices``."""
        x, hw_shape = self.patch_embed(x)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            out, out_hw, x, hw_shape = stage(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.transpose(1, 2).reshape(out.shape[0], -1, *out_hw).contiguous())
        return tuple(outs)
