"""VWFormer decode head (mmseg 1.x) built on :class:`VaryingWindowAttention`."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import ModuleList
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from windowlab.registry import register_model

from .varying_window_attention import VaryingWindowAttention

# Context/query window ratios of the three VWA branches.
RATIOS = (2, 4, 8)
# Channels of the stride-4 feature in the low-level enhancement.
LOW_LEVEL_CHANNELS = 48


def tokenwise(linear, x):
    """Apply an ``nn.Linear`` to every pixel: ``[B, C_in, H, W] -> [B, C_out, H, W]``."""
    return linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register_model(tasks=('seg', ))
class VWHead(BaseDecodeHead):
    """VWFormer head: multi-scale varying window attention on the stride-8 map.

    Data flow (``C = channels``), as in the official ``VWHead``:

    1. *Aggregation*: token-wise Linear layers map levels 2-4 (strides 8/16/32) to ``C``;
       levels 3 and 4 are bilinearly resized to the stride-8 size; ``fuse`` (1x1 conv, norm,
       act) maps the concatenation ``[c4, c3, c2]`` to ``C``.
    2. *Multi-scale*: five ``C``-channel branches, concatenated in this order: a 1x1
       ``short_path``, global ``image_pool``, and :class:`VaryingWindowAttention` with
       context ratios 2, 4 and 8; ``bottleneck`` (1x1 conv, norm, act) maps ``5C`` to ``C``.
    3. *Low-level enhancement*: the result is upsampled to stride 4, concatenated with a
       token-wise Linear projection of level 1 to 48 channels and fused by ``low_level_fuse``
       (1x1 conv, norm, act), followed by the classifier.

    Beyond the official head: every norm follows ``norm_cfg`` (the official code hard-codes
    SyncBN in five places) and any input size works (VWA pads the stride-8 map to a multiple
    of 8 internally and crops back, so ``ResizeToMultiple`` is not needed), and it exports
    with dynamic sizes (it resizes with ``F.interpolate``: mmseg's ``resize`` turns sizes into
    ints, which fixes an export to the traced size). Official VWFormer checkpoints convert
    with :func:`windowlab.projects.vwformer.converter.convert_vwformer`.

    Args:
        short_cut (bool): add the fused map to every VWA branch output.
        nheads (int): attention heads of each VWA branch (official name, 1 in every
            official ADE20K config).
        **kwargs: :class:`BaseDecodeHead` arguments. ``in_channels`` lists the channels of
            the four levels (strides 4, 8, 16, 32); ``channels`` must be divisible by 64.
            ``input_transform`` is always ``'multiple_select'``.

    Shapes:
        inputs: four maps ``[B, in_channels[i], H_i, W_i]`` (strides 4/8/16/32);
        output: ``[B, num_classes, H_0, W_0]`` (stride 4).
    """

    def __init__(self, short_cut=True, nheads=1, **kwargs):
        if kwargs.pop('input_transform', 'multiple_select') != 'multiple_select':
            raise ValueError("VWHead uses all four levels: input_transform must be "
                             "'multiple_select'")
        super().__init__(input_transform='multiple_select', **kwargs)
        if len(self.in_channels) != 4:
            raise ValueError(
                f'VWHead fuses exactly 4 feature levels (strides 4, 8, 16, 32), got '
                f'in_channels={self.in_channels}; set in_channels and in_index to 4 levels')
        lcm = max(r * r for r in RATIOS)
        if self.channels % lcm:
            raise ValueError(f'VWHead needs channels divisible by {lcm} (the ratio-8 branch '
                             f'pre-scales to channels/64), got channels={self.channels}')
        c = self.channels
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

        # level_projs[i] projects level i + 1 (strides 8, 16, 32).
        self.level_projs = ModuleList(nn.Linear(cin, c) for cin in self.in_channels[1:])
        self.fuse = ConvModule(3 * c, c, 1, **conv)

        self.short_path = ConvModule(c, c, 1, **conv)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(c, c, 1, **conv))
        self.attn = ModuleList(
            VaryingWindowAttention(
                c, ratio, num_heads=nheads, short_cut=short_cut, norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for ratio in RATIOS)
        self.bottleneck = ConvModule((2 + len(RATIOS)) * c, c, 1, **conv)

        self.low_level_proj = nn.Linear(self.in_channels[0], LOW_LEVEL_CHANNELS)
        self.low_level_fuse = ConvModule(c + LOW_LEVEL_CHANNELS, c, 1, **conv)

    def _check_inputs(self, inputs):
        if len(inputs) <= max(self.in_index):
            raise ValueError(
                f'VWHead got {len(inputs)} feature maps but in_index={self.in_index} needs '
                f'{max(self.in_index) + 1}; the backbone must return the 4 levels of strides '
                '4, 8, 16, 32 (e.g. out_indices=(0, 1, 2, 3))')
        for level, (i, cin) in enumerate(zip(self.in_index, self.in_channels)):
            if inputs[i].dim() != 4 or inputs[i].shape[1] != cin:
                raise ValueError(
                    f'VWHead level {level} (inputs[{i}]) should be [B, {cin}, H, W], got '
                    f'{tuple(inputs[i].shape)}; set in_channels to the backbone out channels')

    def aggregate(self, inputs):
        """Levels 2-4 -> fused stride-8 map ``[B, C, H_1, W_1]``."""
        c2 = inputs[1]
        levels = [tokenwise(proj, x) for proj, x in zip(self.level_projs, inputs[1:])]
        levels = [levels[0]] + [
            F.interpolate(x, size=c2.shape[2:], mode='bilinear', align_corners=False)
            for x in levels[1:]
        ]
        return self.fuse(torch.cat(levels[::-1], dim=1))

    def multi_scale(self, x):
        """``[B, C, H, W]`` -> short path, image pool, VWA x3 -> bottleneck -> ``[B, C, H, W]``."""
        pooled = F.interpolate(self.image_pool(x), size=x.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
        branches = [self.short_path(x), pooled] + [attn(x) for attn in self.attn]
        return self.bottleneck(torch.cat(branches, dim=1))

    def low_level(self, x, c1):
        """Upsample to stride 4 and fuse with the projected level 1."""
        x = F.interpolate(x, size=c1.shape[2:], mode='bilinear', align_corners=False)
        return self.low_level_fuse(torch.cat([x, tokenwise(self.low_level_proj, c1)], dim=1))

    def forward(self, inputs):
        self._check_inputs(inputs)
        inputs = self._transform_inputs(inputs)
        x = self.multi_scale(self.aggregate(inputs))
        return self.cls_seg(self.low_level(x, inputs[0]))
