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

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from ...converters.checkpoint import (drop_unfit_output_norms, init_from_pretrained_cfg,
                                      pretrained_final_norm)
from ...converters.swin import convert_swin
from ...registry import LAYERS, register_model
from ..layers.norm_act import LayerNorm2d, build_norm_layer
from ..layers.patch import DropPath, Mlp
from ..utils import DropInBackbone, init_linear_and_norm, maybe_checkpoint, resolve_arch

SWIN_ARCHS = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


@LAYERS.register_module()
class SwinBlock(nn.Module):
    """``x + DropPath(attn(LN(x))); x + DropPath(MLP(LN(x)))`` on ``[B, H*W, C]`` tokens."""

    def __init__(self, embed_dims, attn_cfg, mlp_ratio=4.0, drop=0.0, drop_path=0.0, act_cfg=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LAYERS.build(attn_cfg)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop, act_cfg)

    def forward(self, x, hw_shape):
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinStage(nn.Module):
    """``depth`` blocks (odd ones shifted) and an optional down-sampling at the end.

    ``with_cp`` runs every block through activation checkpointing while training.
    """

    def __init__(self, embed_dims, num_heads, depth, window_size, attn_cfg, block_cfg,
                 shift_windows, mlp_ratio, qkv_bias, drop, attn_drop, drop_paths, downsample_cfg,
                 with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        blocks = []
        for i in range(depth):
            cfg = dict(embed_dims=embed_dims, num_heads=num_heads, window_size=window_size,
                       qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
            if shift_windows and i % 2:  # only a shifted block's attention gets a shift_size
                cfg['shift_size'] = window_size // 2
            cfg.update(copy.deepcopy(attn_cfg))
            try:
                blocks.append(LAYERS.build(dict(embed_dims=embed_dims, attn_cfg=cfg,
                                                mlp_ratio=mlp_ratio, drop=drop,
                                                drop_path=drop_paths[i], **block_cfg)))
            except TypeError as e:
                if "argument 'shift_size'" not in str(e):
                    raise
                raise ValueError(f"{cfg['type']} does not shift windows (it takes no "
                                 'shift_size); build the backbone with shift_windows=False') from e
        self.blocks = nn.ModuleList(blocks)
        self.downsample = None
        if downsample_cfg is not None:
            self.downsample = LAYERS.build(dict(in_channels=embed_dims, out_channels=2 * embed_dims,
                                                **downsample_cfg))

    def forward(self, x, hw_shape):
        """Returns ``(stage_out, stage_hw, next_in, next_hw)``."""
        for block in self.blocks:
            x = maybe_checkpoint(block, x, hw_shape, with_cp=self.with_cp)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        down, down_hw = self.downsample(x, hw_shape)
        return x, hw_shape, down, down_hw


def resize_pos_embed(pos_embed, src_hw, dst_hw, mode='bicubic'):
    """``[1, Hs*Ws, C]`` position embedding -> ``[1, Hd*Wd, C]``, interpolated as a map."""
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    c = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, *src_hw, c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(dst_hw), mode=mode, align_corners=False)
    return grid.flatten(2).transpose(1, 2)


def _image_size(size, name):
    """``224``, ``(224,)`` or ``(H, W)`` -> ``(H, W)``."""
    size = (size,) if isinstance(size, int) else tuple(size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2:
        raise ValueError(f'{name} must be an int or a tuple of 1 or 2 ints, got {size}')
    return size


# mmpretrain's arguments that configure its own sub-modules: windowlab's counterparts.
_UPSTREAM_COMPONENT_ARGS = {
    'stage_cfgs': 'attn_cfg (attention), block_cfg (block) and downsample_cfg (down-sampling)',
    'patch_cfg': 'patch_embed_cfg',
}


@register_model()
class WLSwinTransformer(DropInBackbone, BaseModule):
    """Swin Transformer (windowlab) for classification, detection and segmentation.

    Also accepts the arguments of mmdet/mmseg's and mmpretrain's ``SwinTransformer``, with
    their meaning (marked *upstream* below).

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (or ``'t'``, ``'s'``,
            ``'b'``, ``'l'``) or a dict with ``embed_dims``, ``depths`` and ``num_heads``.
        embed_dims, depths, num_heads: *upstream* (mmdet/mmseg) flat form; each one given
            replaces that entry of ``arch``.
        in_channels (int): image channels.
        patch_size (int): stride of the patch embedding.
        window_size (int | tuple[int]): attention window side, or one per stage. The
            official classification code builds a stage whose map is not larger than the
            window for the map's side (window 14 at 224: ``(14, 14, 14, 7)``), and so does
            its relative position table; give the per-stage sides to load such files.
        mlp_ratio (float): MLP hidden width / embed width.
        qkv_bias (bool): bias in the qkv projections.
        qk_scale (float, optional): *upstream*: attention logit scale instead of
            ``head_dim ** -0.5``.
        drop_rate (float): dropout after projections/MLP.
        attn_drop_rate (float): dropout on attention weights.
        drop_path_rate (float): stochastic depth, rising linearly over all blocks to this value.
        out_indices (tuple[int]): stages whose outputs are returned (each after its own
            norm ``norm{i}``), as ``[B, C_i, H_i, W_i]`` maps.
        out_after_downsample (bool): *upstream* (mmpretrain): return stage ``i`` after the
            down-sampling that follows it (``2 C_i`` channels, half the side).
        strides (tuple[int], optional): *upstream* (mmdet/mmseg): ``strides[0]`` must equal
            ``patch_size`` (non-overlapping embedding); ``strides[i]`` is the stride of the
            down-sampling into stage ``i`` (``PatchMerging`` concatenates ``s x s``
            neighbours).
        patch_norm (bool): *upstream*: LayerNorm in the patch embedding and merging.
        use_abs_pos_embed (bool): *upstream*: add a learned absolute position embedding to the
            patch tokens, sized for ``pretrain_img_size`` and interpolated
            (``interpolate_mode``) to other inputs, as mmpretrain does.
        pretrain_img_size, img_size (int | tuple): *upstream* names (mmdet/mmseg, mmpretrain)
            of the image size the absolute position embedding is made for (default 224).
        interpolate_mode (str): *upstream*: how that embedding is resized.
        pad_small_map (bool, optional): *upstream* (mmpretrain): ``False`` is windowlab's
            ``adaptive_window=True`` (one unshifted window on maps not larger than it),
            ``True`` pads instead; None leaves ``attn_cfg`` as it is.
        act_cfg (dict): *upstream*: activation of the MLPs.
        norm_cfg (dict, optional): norm of the returned maps (``norm{i}``), as mmpretrain:
            LayerNorms act on the tokens, other norms (``dict(type='BN')``) on the maps;
            None returns the maps without a norm. (mmdet/mmseg also use it inside the blocks;
            windowlab's block norms are the released LayerNorms.)
        with_cp (bool): activation checkpointing of every block while training.
        frozen_stages (int): ``-1``: nothing; ``0``: the patch embedding (and absolute
            position embedding); ``k``: also stages ``0 .. k-1`` with their down-sampling and
            output norms (as mmdet/mmseg; mmpretrain's ``k`` freezes one stage more). Frozen
            parts get no gradient and stay in eval mode in ``train()``.
        norm_eval (bool): keep BatchNorm layers (a ``BN`` ``norm_cfg``) in eval mode while
            training.
        attn_cfg (dict): attention component from ``LAYERS``; the backbone fills in
            ``embed_dims, num_heads, window_size, qkv_bias, attn_drop, proj_drop`` and, in
            shifted blocks, ``shift_size`` unless the dict sets them.
        block_cfg (dict): the block from ``LAYERS``; gets ``embed_dims, attn_cfg, mlp_ratio,
            drop, drop_path`` (and ``act_cfg`` if not GELU).
        shift_windows (bool): shift odd blocks by ``window_size // 2`` (Swin) or never.
        patch_embed_cfg (dict): patch embedding component from ``LAYERS``.
        downsample_cfg (dict): down-sampling component from ``LAYERS``.
        pretrained (str, optional): *upstream*: same as
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``.
        convert_weights (bool): *upstream* (mmdet); accepted for compatibility: windowlab
            recognises official, OpenMMLab and windowlab layouts by their keys anyway.
        stage_cfgs, patch_cfg: *upstream* (mmpretrain) configs of its own sub-modules; only
            empty values are accepted, others raise an error naming windowlab's equivalent.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=...,
            final_norm=None)`` (alone or in a list with other initialisers) accepts official
            Swin files (``{'model': ...}``), mmdet/mmseg/mmpretrain Swin checkpoints and
            windowlab ones (see :func:`windowlab.converters.swin.convert_swin`);
            ``final_norm='norm3'`` puts an official classifier's final norm there (dropped by
            default). Bias tables trained for another window are resized (bicubic), and so is
            an absolute position embedding made for another image size.
    """

    def __init__(self, arch='tiny', in_channels=3, patch_size=4, window_size=7, mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 out_indices=(0, 1, 2, 3), attn_cfg=dict(type='WindowMSA'),
                 block_cfg=dict(type='SwinBlock'), shift_windows=True,
                 patch_embed_cfg=dict(type='PatchEmbed'), downsample_cfg=dict(type='PatchMerging'),
                 embed_dims=None, depths=None, num_heads=None, qk_scale=None, strides=None,
                 patch_norm=True, out_after_downsample=False, use_abs_pos_embed=False,
                 pretrain_img_size=None, img_size=None, interpolate_mode='bicubic',
                 pad_small_map=None, act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN'),
                 with_cp=False, frozen_stages=-1, norm_eval=False, pretrained=None,
                 convert_weights=False, stage_cfgs=None, patch_cfg=None, init_cfg=None):
        for name, value in dict(stage_cfgs=stage_cfgs, patch_cfg=patch_cfg).items():
            if value:
                raise ValueError(f'{name} configures an mmpretrain-internal module; windowlab '
                                 f'configures the same through {_UPSTREAM_COMPONENT_ARGS[name]}')
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a checkpoint path (str) or None, got '
                                f'{type(pretrained).__name__}')
            if init_cfg is not None:
                raise ValueError('give either pretrained or init_cfg, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            arch = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large'}.get(arch.lower(),
                                                                           arch.lower())
        arch = resolve_arch(arch, SWIN_ARCHS)
        for key, value in dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads).items():
            if value is not None:
                arch[key] = value
        embed_dims, depths, num_heads = arch['embed_dims'], arch['depths'], arch['num_heads']
        num_stages = len(depths)
        if len(num_heads) != num_stages:
            raise ValueError(f'depths {depths} and num_heads {num_heads} differ in length')
        self.depths = tuple(depths)
        self.out_indices = tuple(i % num_stages for i in out_indices)
        if len(set(self.out_indices)) != len(out_indices):
            raise ValueError(f'out_indices {out_indices} repeat a stage')
        self.num_stages = num_stages
        windows = tuple(window_size) if isinstance(window_size, (tuple, list)) else \
            (window_size,) * num_stages
        if len(windows) != num_stages:
            raise ValueError(f'window_size {window_size} needs one side per stage ({num_stages})')
        self.frozen_stages = frozen_stages
        self._check_frozen_stages(num_stages)
        self.norm_eval = norm_eval
        self.out_after_downsample = out_after_downsample
        self.interpolate_mode = interpolate_mode

        strides = tuple(strides) if strides is not None else (patch_size,) + (2,) * (num_stages - 1)
        if len(strides) != num_stages or strides[0] != patch_size:
            raise ValueError(f'strides {strides}: need one per stage, and strides[0] equal to '
                             f'patch_size {patch_size} (the patch embedding does not overlap)')
        patch_embed_cfg = dict(patch_embed_cfg, **({} if patch_norm else dict(norm=False)))
        self.patch_embed = LAYERS.build(dict(in_channels=in_channels, embed_dims=embed_dims,
                                             patch_size=patch_size, **patch_embed_cfg))
        if pretrain_img_size is not None and img_size is not None:
            raise ValueError('pretrain_img_size (mmdet/mmseg) and img_size (mmpretrain) are the '
                             'same argument; give one')
        img_size = _image_size(img_size or pretrain_img_size or 224,
                               'img_size' if img_size else 'pretrain_img_size')
        self.patch_resolution = tuple(math.ceil(s / patch_size) for s in img_size)
        self.absolute_pos_embed = None
        if use_abs_pos_embed:
            self.absolute_pos_embed = nn.Parameter(
                torch.zeros(1, math.prod(self.patch_resolution), embed_dims))
        self.drop_after_pos = nn.Dropout(drop_rate)

        attn_cfg = dict(attn_cfg)
        if qk_scale is not None:
            attn_cfg.setdefault('qk_scale', qk_scale)
        if pad_small_map is not None:
            attn_cfg['adaptive_window'] = not pad_small_map
        block_cfg = dict(block_cfg)
        if act_cfg is not None and act_cfg.get('type') != 'GELU':
            block_cfg['act_cfg'] = act_cfg
        downsample_cfg = dict(downsample_cfg, **({} if patch_norm else dict(norm=False)))
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        self.num_features = []
        for i, depth in enumerate(depths):
            dims = embed_dims * 2 ** i
            down = None
            if i < num_stages - 1:
                down = dict(downsample_cfg, **({} if strides[i + 1] == 2 else
                                               dict(stride=strides[i + 1])))
            self.stages.append(SwinStage(
                dims, num_heads[i], depth, windows[i], attn_cfg, block_cfg, shift_windows, mlp_ratio,
                qkv_bias, drop_rate, attn_drop_rate, rates[sum(depths[:i]):sum(depths[:i + 1])],
                down, with_cp))
            last = i == num_stages - 1
            self.num_features.append(dims * 2 if out_after_downsample and not last else dims)
        for i in self.out_indices:
            norm = nn.Identity() if norm_cfg is None else build_norm_layer(
                norm_cfg, self.num_features[i])[1]
            self.add_module(f'norm{i}', norm)
        self.window_sizes = windows
        self._freeze()

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
        if self.absolute_pos_embed is not None:
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        super().init_weights()

    def convert_pretrained(self, state_dict):
        """Any supported Swin layout -> this backbone's keys.

        An official classifier's final ``norm`` goes where ``init_cfg['final_norm']`` says
        (e.g. ``'norm3'`` to fine-tune a classifier) and is dropped by default, as in the
        official detection code and mmdet/mmseg, whatever ``out_indices`` is. windowlab and
        OpenMMLab files load as themselves; only their output norms this backbone has no
        place for are dropped (logged). An absolute position embedding made for another
        image size is interpolated to this one.
        """
        converted = convert_swin(state_dict, final_norm=pretrained_final_norm(self))
        pos = converted.get('absolute_pos_embed')
        if (pos is not None and self.absolute_pos_embed is not None
                and pos.shape != self.absolute_pos_embed.shape):
            side = math.isqrt(pos.shape[1])  # released embeddings are square
            converted['absolute_pos_embed'] = resize_pos_embed(
                pos, (side, side), self.patch_resolution, self.interpolate_mode)
        return drop_unfit_output_norms(self, converted)

    def frozen_parts(self):
        if self.frozen_stages < 0:
            return []
        parts = [self.patch_embed, self.drop_after_pos]
        if self.absolute_pos_embed is not None:
            parts.append(self.absolute_pos_embed)
        for i in range(self.frozen_stages):
            parts.append(self.stages[i])
            if i in self.out_indices:
                parts.append(getattr(self, f'norm{i}'))
        return parts

    def layer_position(self, name):
        parts = name.split('.')
        if parts[0] in ('patch_embed', 'absolute_pos_embed'):
            return ('stem',)
        if parts[0] == 'stages' and parts[2] == 'blocks':
            return ('block', int(parts[1]), int(parts[3]))
        if parts[0] == 'stages' and parts[2] == 'downsample':
            return ('downsample', int(parts[1]))
        return None

    def _output_norm(self, i, tokens, hw_shape):
        """``norm{i}`` of ``[B, H*W, C]`` tokens -> ``[B, C, H, W]`` map (LayerNorms on the
        tokens, any other norm on the map)."""
        norm = getattr(self, f'norm{i}')
        on_tokens = (isinstance(norm, (nn.LayerNorm, nn.Identity))
                     and not isinstance(norm, LayerNorm2d))  # LN2d is a LayerNorm of maps
        if on_tokens:
            tokens = norm(tokens)
        fmap = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *hw_shape)
        if not on_tokens:
            fmap = norm(fmap)
        return fmap.contiguous()

    def forward(self, x):
        """``[B, C_in, H, W]`` -> tuple of ``[B, C_i, H_i, W_i]`` for ``i`` in ``out_indices``."""
        x, hw_shape = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + resize_pos_embed(self.absolute_pos_embed, self.patch_resolution, hw_shape,
                                     self.interpolate_mode)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            out, out_hw, x, hw_shape = stage(x, hw_shape)
            if self.out_after_downsample:
                out, out_hw = x, hw_shape
            if i in self.out_indices:
                outs.append(self._output_norm(i, out, out_hw))
        return tuple(outs)
