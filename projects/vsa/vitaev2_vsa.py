"""ViTAEv2-VSA backbone: ViTAEv2 (Zhang et al., IJCV 2023) with VSA in every cell.

Each of the four stages is a *reduction cell* (RC: multi-dilation convolutions (PRM) that
down-sample and widen the tokens, VSA, a parallel convolution branch (PCM) from the stage
input, MLP) followed by *normal cells* (NC: VSA in parallel with a grouped-conv PCM, MLP).
Both cells add a depth-wise conditional position encoding (CPE, 7x7 at window 7) to the
attention input.

``ViTAEv2VSA`` reproduces both released codes numerically (tests/test_vsa_vitaev2.py):

* ``variant='cls'``: ``Image-Classification/vitaev2_vsa`` (ImageNet models, with a
  ``GlobalAveragePooling`` neck and ``LinearClsHead``; there is no final norm);
* ``variant='det'``: ``Object-Detection/.../vitaev2_vsa.py`` (symmetric padding, swapped
  offset normalisation; the backbone of the released COCO results).

Released checkpoints (``state_dict`` / ``state_dict_ema``, EMA by default) load through
``init_cfg=dict(type='Pretrained', checkpoint=...)`` or after
``tools/model_converters/vitaev2_vsa2windowlab.py``.
"""
import math

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from windowlab.converters.checkpoint import init_from_pretrained_cfg, strip_prefix
from .converter import convert_vitaev2_vsa, is_official_vitaev2_vsa, state_dict_keys
from windowlab.models.layers.patch import DropPath, Mlp
from windowlab.models.layers.window import map_to_tokens, tokens_to_map
from windowlab.models.utils import (DropInBackbone, init_linear_and_norm, maybe_checkpoint,
                                    resolve_arch)
from windowlab.registry import LAYERS, register_model

# Released configurations (models.py of the official classification code).
VITAEV2_VSA_ARCHS = {
    's': dict(embed_dims=(64, 64, 128, 256), token_dims=(64, 128, 256, 512),
              depths=(2, 2, 8, 2), rc_heads=(2, 2, 4, 8), nc_heads=(2, 4, 8, 16),
              rc_groups=(1, 16, 32, 64), nc_groups=(1, 32, 64, 128), wide_pcm=False),
    '48m': dict(embed_dims=(96, 96, 192, 384), token_dims=(96, 192, 384, 768),
                depths=(2, 2, 11, 2), rc_heads=(3, 6, 12, 24), nc_heads=(3, 6, 12, 24),
                rc_groups=(1, 16, 32, 64), nc_groups=(1, 32, 64, 128), wide_pcm=True),
    'b': dict(embed_dims=(128, 128, 256, 512), token_dims=(128, 256, 512, 1024),
              depths=(2, 2, 12, 2), rc_heads=(4, 8, 16, 32), nc_heads=(4, 8, 16, 32),
              rc_groups=(1, 16, 32, 64), nc_groups=(1, 32, 64, 128), wide_pcm=True),
}

# Windows of each official code: (reduction-cell window, reduction CPE kernel, normal CPE
# kernel) for a configured window ``w``. Classification: every cell uses ``w``, CPEs are 7x7.
# Detection: reduction cells keep window 7 (and a 7x7 CPE); normal cells use ``w`` with a
# ``w // 2 * 2 + 1`` CPE. Both agree at w = 7.
WINDOW_RULES = {
    'cls': lambda w: (w, 7, 7),
    'det': lambda w: (7, 7, w // 2 * 2 + 1),
}

# How each official code runs VSA.
VSA_VARIANTS = {
    'cls': dict(pad_mode='bottom_right', swap_offset_norm=False),
    'det': dict(pad_mode='symmetric', swap_offset_norm=True),
}


class DepthwiseCPE(nn.Conv2d):
    """Conditional position encoding: a ``k x k`` depth-wise conv (added by the caller)."""

    def __init__(self, dims, kernel_size=7):
        super().__init__(dims, dims, kernel_size, padding=kernel_size // 2, groups=dims)


class PyramidReduction(nn.Module):
    """PRM: parallel strided convolutions with growing dilation, GELU, concatenated.

    ``[B, C_in, H, W]`` -> ``[B, len(dilations) * C, H', W']``; the channels are grouped by
    dilation (all channels of dilation 1 first, ...). The padding keeps ``H' = H / stride``
    for sides divisible by the stride.
    """

    def __init__(self, in_channels, embed_dims, kernel_size, stride, dilations):
        super().__init__()
        self.convs = nn.ModuleList()
        for dilation in dilations:
            padding = math.ceil(((kernel_size - 1) * dilation + 1 - stride) / 2)
            self.convs.append(nn.Conv2d(in_channels, embed_dims, kernel_size, stride=stride,
                                        padding=padding, dilation=dilation))
        self.out_channels = embed_dims * len(dilations)

    def forward(self, x):
        return torch.cat([F.gelu(conv(x)) for conv in self.convs], dim=1)


class ReductionCell(nn.Module):
    """Down-sampling cell: ``y = VSA(LN(p + CPE(p))) + PCM(x)``, then ``y + MLP(LN(y))``,
    with ``p = PRM(x)``.

    ``forward(x [B, C_in, H, W]) -> (tokens [B, H'*W', token_dims], (H', W'))``. Its
    LayerNorms use eps 1e-5 and its MLP ratio is 1, as released.
    """

    def __init__(self, in_channels, embed_dims, token_dims, stride, kernel_size, dilations,
                 num_heads, groups, wide_pcm, attn_cfg, drop=0.0, cpe_kernel_size=7):
        super().__init__()
        strides = tuple(2 if stride >> (i + 1) else 1 for i in range(3))
        if math.prod(strides) != stride:
            raise ValueError(f'reduction stride must be 2, 4 or 8, got {stride}')
        hidden = token_dims * 2 if wide_pcm else embed_dims
        self.pcm = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, strides[0], 1, groups=groups),
            nn.BatchNorm2d(hidden),
            nn.SiLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, strides[1], 1, groups=groups),
            nn.BatchNorm2d(hidden),
            nn.SiLU(inplace=True),
            nn.Conv2d(hidden, token_dims, 3, strides[2], 1, groups=groups),
        )
        self.prm = PyramidReduction(in_channels, embed_dims, kernel_size, stride, dilations)
        prm_dims = self.prm.out_channels
        self.cpe = DepthwiseCPE(prm_dims, cpe_kernel_size)
        self.norm1 = nn.LayerNorm(prm_dims)
        self.attn = LAYERS.build(dict(attn_cfg, embed_dims=prm_dims, out_dims=token_dims,
                                      num_heads=num_heads))
        self.norm2 = nn.LayerNorm(token_dims)
        self.mlp = Mlp(token_dims, token_dims, drop)

    def forward(self, x):
        p = self.prm(x)
        conv = self.pcm(x)
        hw_shape = tuple(p.shape[2:])
        if tuple(conv.shape[2:]) != hw_shape:
            raise ValueError(
                f'ViTAEv2-VSA cannot reduce a {tuple(x.shape[2:])} map: its two branches give '
                f'{hw_shape} and {tuple(conv.shape[2:])}. Pad the image to a multiple of 32 '
                '(e.g. pad_size_divisor=32 in the data preprocessor).')
        p = p + self.cpe(p)
        x = self.attn(self.norm1(map_to_tokens(p)), hw_shape) + map_to_tokens(conv)
        return x + self.mlp(self.norm2(x)), hw_shape


class NormalCell(nn.Module):
    """``x + VSA(LN(x + CPE(x))) + PCM(x)``, then ``x + MLP(LN(x))`` (LayerNorm eps 1e-6).

    ``forward(x [B, H*W, C], (H, W)) -> [B, H*W, C]``.
    """

    def __init__(self, dims, num_heads, groups, attn_cfg, mlp_ratio=4.0, drop=0.0,
                 drop_path=0.0, cpe_kernel_size=7):
        super().__init__()
        hidden = int(dims * mlp_ratio)
        self.cpe = DepthwiseCPE(dims, cpe_kernel_size)
        self.norm1 = nn.LayerNorm(dims, eps=1e-6)
        self.attn = LAYERS.build(dict(attn_cfg, embed_dims=dims, num_heads=num_heads))
        self.pcm = nn.Sequential(
            nn.Conv2d(dims, hidden, 3, 1, 1, groups=groups),
            nn.BatchNorm2d(hidden),
            nn.SiLU(inplace=True),
            nn.Conv2d(hidden, dims, 3, 1, 1, groups=groups),
            nn.BatchNorm2d(dims),
            nn.SiLU(inplace=True),
            nn.Conv2d(dims, dims, 3, 1, 1, groups=groups),
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dims, eps=1e-6)
        self.mlp = Mlp(dims, hidden, drop)

    def forward(self, x, hw_shape):
        x_map = tokens_to_map(x, hw_shape)
        attn = self.attn(self.norm1(x + map_to_tokens(self.cpe(x_map))), hw_shape)
        x = x + self.drop_path(attn) + self.drop_path(map_to_tokens(self.pcm(x_map)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViTAEv2VSAStage(nn.Module):
    """One reduction cell and ``depth`` normal cells."""

    def __init__(self, reduction, normals, with_cp=False):
        super().__init__()
        self.reduction = reduction
        self.normal = nn.ModuleList(normals)
        self.with_cp = with_cp

    def forward(self, x):
        x, hw_shape = self.reduction(x)
        for cell in self.normal:
            x = maybe_checkpoint(cell, x, hw_shape, with_cp=self.with_cp)
        return x, hw_shape


@register_model()
class ViTAEv2VSA(DropInBackbone, BaseModule):
    """ViTAEv2 with varied-size window attention, for classification, detection, segmentation.

    Args:
        arch (str | dict): ``'s'`` (19.8M params with a 1000-class head), ``'48m'``, ``'b'``, or a
            dict with the keys of :data:`VITAEV2_VSA_ARCHS` (per-stage tuples and ``wide_pcm``).
        in_channels (int): image channels.
        variant (str): which released code to reproduce, ``'cls'`` (bottom/right padding,
            offsets x/(W//ws), y/(H//ws)) or ``'det'`` (symmetric padding, offsets
            x/(H//ws), y/(W//ws)). Identical on maps whose sides are multiples of the window
            and equal, except for the offset normalisation on non-square maps. With a window
            other than 7 they also build different cells (:data:`WINDOW_RULES`): ``'cls'``
            keeps every CPE 7x7, ``'det'`` keeps the reduction cells at window 7 and gives
            the normal cells a ``window // 2 * 2 + 1`` CPE.
        window_size (int): VSA default window.
        strides (tuple[int]): down-sampling of each reduction cell.
        kernel_sizes (tuple[int]): PRM kernel of each stage.
        dilations (tuple[tuple[int]]): PRM dilations of each stage.
        mlp_ratio (float): MLP / PCM hidden ratio of the normal cells.
        qkv_bias (bool): bias of the VSA qkv projections.
        drop_rate (float): dropout after projections and MLPs.
        attn_drop_rate (float): dropout on attention weights.
        drop_path_rate (float): stochastic depth of the normal cells, rising linearly over
            all of them to this value.
        out_indices (tuple[int]): stages returned, each as a raw ``[B, C_i, H_i, W_i]`` map
            (no norm, as released); ``(3,)`` for classification.
        frozen_stages (int): ``-1``: nothing; ``0``: the stem (stage 0's reduction cell);
            ``k``: stages ``0 .. k-1``. Frozen parts get no gradient and stay in eval mode in
            ``train()``.
        norm_eval (bool): keep the BatchNorm layers (of the PCM branches) in eval mode while
            training.
        with_cp (bool): activation checkpointing of the normal cells while training.
        attn_cfg (dict): overrides for the attention component (``type`` and kwargs).
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=PATH,
            use_ema=True)`` (alone or in a list with other initialisers)
            loads an official release file (``state_dict_ema`` if present and ``use_ema``),
            a converted windowlab file, or an mmpretrain/mmdet checkpoint of this backbone
            (add ``prefix='backbone.'``).
    """

    def __init__(self, arch='s', in_channels=3, variant='cls', window_size=7,
                 strides=(4, 2, 2, 2), kernel_sizes=(7, 3, 3, 3),
                 dilations=((1, 2, 3, 4), (1, 2, 3), (1, 2), (1, 2)), mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 out_indices=(0, 1, 2, 3), frozen_stages=-1, with_cp=False, attn_cfg=None,
                 norm_eval=False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch.lower() if isinstance(arch, str) else arch, VITAEV2_VSA_ARCHS)
        if variant not in VSA_VARIANTS:
            raise ValueError(f'variant must be one of {sorted(VSA_VARIANTS)}, got {variant!r}')
        depths = arch['depths']
        num_stages = len(depths)
        self.out_indices = tuple(i % num_stages for i in out_indices)
        self.frozen_stages = frozen_stages
        self._check_frozen_stages(num_stages)
        self.norm_eval = norm_eval
        self.depths = tuple(depths)
        self.num_features = list(arch['token_dims'])
        base_attn = dict(type='VSAWindowAttention', window_size=window_size, qkv_bias=qkv_bias,
                         attn_drop=attn_drop_rate, proj_drop=drop_rate, **VSA_VARIANTS[variant])
        base_attn.update(attn_cfg or {})
        rc_window, rc_cpe, nc_cpe = WINDOW_RULES[variant](base_attn['window_size'])
        rc_attn = dict(base_attn, window_size=rc_window)

        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        channels = in_channels
        for i, depth in enumerate(depths):
            reduction = ReductionCell(
                channels, arch['embed_dims'][i], arch['token_dims'][i], strides[i],
                kernel_sizes[i], dilations[i], arch['rc_heads'][i], arch['rc_groups'][i],
                arch['wide_pcm'], rc_attn, drop_rate, rc_cpe)
            normals = [NormalCell(arch['token_dims'][i], arch['nc_heads'][i], arch['nc_groups'][i],
                                  base_attn, mlp_ratio, drop_rate, rates[sum(depths[:i]) + j],
                                  nc_cpe)
                       for j in range(depth)]
            self.stages.append(ViTAEv2VSAStage(reduction, normals, with_cp))
            channels = arch['token_dims'][i]
        self._freeze()

    def init_weights(self):
        if init_from_pretrained_cfg(  # EMA weights first unless use_ema=False
                self, keys=lambda cfg: state_dict_keys(cfg.get('use_ema', True))):
            return
        init_linear_and_norm(self, norm_types=(nn.LayerNorm, nn.BatchNorm2d))
        super().init_weights()

    @staticmethod
    def convert_pretrained(state_dict):
        """Official (``layers.*``) or windowlab (``backbone.*``) layout -> backbone keys."""
        if is_official_vitaev2_vsa(state_dict):
            return strip_prefix(convert_vitaev2_vsa(state_dict), 'backbone.')
        return strip_prefix(state_dict, 'backbone.', if_present=True)

    def frozen_parts(self):
        if self.frozen_stages < 0:
            return []
        return [self.stages[0].reduction] + list(self.stages[:self.frozen_stages])

    def layer_position(self, name):
        parts = name.split('.')
        if parts[0] != 'stages':
            return None
        stage = int(parts[1])
        if parts[2] == 'reduction':
            return ('downsample', stage - 1) if stage else ('stem',)
        return ('block', stage, int(parts[3]))

    def forward(self, x):
        """``[B, C_in, H, W]`` -> tuple of ``[B, C_i, H_i, W_i]`` for ``i`` in ``out_indices``.

        ``H`` and ``W`` must be multiples of 4 (pad to 32 for four stages of any size).
        """
        outs = []
        x = x.contiguous(memory_format=torch.channels_last)  # see tokens_to_map
        for i, stage in enumerate(self.stages):
            x, hw_shape = stage(x)
            x = tokens_to_map(x, hw_shape)
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)
