"""The computation of the VWFormer decode head, in plain torch (no mmcv, no mmseg).

:class:`VWDecodeLayers` builds the head's layers and computes its features; two modules share it
and therefore have the same parameter names:

* :class:`VWDecoder` (here): a plain ``nn.Module`` head, ``four maps -> logits``, for code that
  runs without mmseg (``tools/analysis_tools/device_check.py``);
* :class:`~.vw_head.VWHead`: the mmseg decode head (losses, prediction, ``in_index``).
"""
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList
from torch import nn

from windowlab.models.layers.norm_act import ConvNormAct
from windowlab.models.layers.window import pixelwise_linear

from .varying_window_attention import VaryingWindowAttention

# Context/query window ratios of the three VWA branches.
RATIOS = (2, 4, 8)
# Channels of the stride-4 feature in the low-level enhancement.
LOW_LEVEL_CHANNELS = 48


def fuse_upsampled(fuse, maps, size):
    """``fuse(cat([upsample(m, size) for m in maps]))`` for a 1x1 :class:`ConvNormAct` ``fuse``,
    bilinear upsampling (``align_corners=False``).

    A 1x1 conv mixes channels per pixel and bilinear upsampling mixes pixels per channel, so they
    commute: each map's share of the conv is computed before upsampling, at the map's own size,
    and the shares are summed at ``size``. The same result (up to float rounding) without the
    concatenated full-size map, in a fraction of the multiply-adds and of the memory kept for
    backward.
    """
    conv = fuse.conv
    if (conv.kernel_size, conv.stride, conv.padding, conv.groups) != ((1, 1), (1, 1), (0, 0), 1):
        raise ValueError(f'fuse_upsampled needs a plain 1x1 conv, got {conv}')
    weights = conv.weight.split([m.shape[1] for m in maps], dim=1)
    out = 0
    for m, w in zip(maps, weights):
        share = F.conv2d(m, w)
        if tuple(share.shape[2:]) != tuple(size):
            share = F.interpolate(share, size=size, mode='bilinear', align_corners=False)
        out = out + share
    if conv.bias is not None:
        out = out + conv.bias.to(out.dtype).view(1, -1, 1, 1)
    return fuse.norm_act(out)


class VWDecodeLayers:
    """Mixin: the layers and data flow of the VWFormer head (see :class:`~.vw_head.VWHead`).

    The host module sets ``in_channels`` (4 ints), ``channels``, ``norm_cfg`` and ``act_cfg``,
    then calls :meth:`_build_vw_layers`; :meth:`decode` maps the four levels
    to the ``[B, channels, H_0, W_0]`` features in front of the classifier.
    """

    def _build_vw_layers(self, short_cut, nheads):
        if len(self.in_channels) != 4:
            raise ValueError(
                f'VWHead fuses exactly 4 feature levels (strides 4, 8, 16, 32), got '
                f'in_channels={self.in_channels}; set in_channels and in_index to 4 levels')
        lcm = max(r * r for r in RATIOS)
        if self.channels % lcm:
            raise ValueError(f'VWHead needs channels divisible by {lcm} (the ratio-8 branch '
                             f'pre-scales to channels/64), got channels={self.channels}')
        c = self.channels

        def conv(cin):
            return ConvNormAct(cin, c, 1, self.norm_cfg, self.act_cfg)

        # level_projs[i] projects level i + 1 (strides 8, 16, 32).
        self.level_projs = ModuleList(nn.Linear(cin, c) for cin in self.in_channels[1:])
        self.fuse = conv(3 * c)
        self.short_path = conv(c)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(c))
        self.attn = ModuleList(
            VaryingWindowAttention(
                c, ratio, num_heads=nheads, short_cut=short_cut, norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for ratio in RATIOS)
        self.bottleneck = conv((2 + len(RATIOS)) * c)
        self.low_level_proj = nn.Linear(self.in_channels[0], LOW_LEVEL_CHANNELS)
        self.low_level_fuse = conv(c + LOW_LEVEL_CHANNELS)

    def aggregate(self, inputs):
        """Levels 2-4 -> fused stride-8 map ``[B, C, H_1, W_1]``: the ``fuse`` conv of the
        concatenated levels (strides 32, 16, 8), each projected and upsampled to stride 8."""
        levels = [pixelwise_linear(x, proj.weight, proj.bias)
                  for proj, x in zip(self.level_projs, inputs[1:])]
        return fuse_upsampled(self.fuse, levels[::-1], inputs[1].shape[2:])

    def multi_scale(self, x):
        """``[B, C, H, W]`` -> short path, image pool, VWA x3 -> bottleneck -> ``[B, C, H, W]``.

        The image-pool branch is ``[B, C, 1, 1]``, upsampled to a constant map (whatever
        ``align_corners``) inside :func:`fuse_upsampled`.
        """
        branches = [self.short_path(x), self.image_pool(x)] + [attn(x) for attn in self.attn]
        return fuse_upsampled(self.bottleneck, branches, x.shape[2:])

    def low_level(self, x, c1):
        """Upsample to stride 4 and fuse with the projected level 1 (``low_level_fuse`` of
        their concatenation)."""
        low = pixelwise_linear(c1, self.low_level_proj.weight, self.low_level_proj.bias)
        return fuse_upsampled(self.low_level_fuse, [x, low], c1.shape[2:])

    def decode(self, inputs):
        """Four maps ``[B, in_channels[i], H_i, W_i]`` (strides 4/8/16/32) -> the features
        ``[B, channels, H_0, W_0]`` that the classifier ``conv_seg`` maps to logits."""
        return self.low_level(self.multi_scale(self.aggregate(inputs)), inputs[0])


class VWDecoder(VWDecodeLayers, BaseModule):
    """The VWFormer head as a plain module: four maps -> ``[B, num_classes, H_0, W_0]`` logits.

    Same layers, parameter names, initialisation and outputs as the mmseg
    :class:`~.vw_head.VWHead` with ``in_index=[0, 1, 2, 3]`` (a ``VWHead`` state dict loads
    into it), without losses or prediction.

    Args:
        in_channels (list[int]): channels of the four levels (strides 4, 8, 16, 32).
        channels (int): width of the head; divisible by 64.
        num_classes (int): output channels of the classifier ``conv_seg``.
        short_cut (bool): add the fused map to every VWA branch output.
        nheads (int): attention heads of each VWA branch.
        dropout_ratio (float): ``Dropout2d`` in front of the classifier (0: none).
        norm_cfg (dict): norm of every conv (:func:`~windowlab.models.layers.norm_act.
            build_norm_layer`).
        act_cfg (dict): activation of every conv.
        init_cfg (dict, optional): mmengine init config (default: mmseg's, normal std 0.01
            for ``conv_seg``).
    """

    def __init__(self, in_channels, channels, num_classes, short_cut=True, nheads=1,
                 dropout_ratio=0.1, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=dict(type='Normal', std=0.01, override=dict(name='conv_seg'))):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.channels = channels
        self.norm_cfg, self.act_cfg = norm_cfg, act_cfg
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None
        self._build_vw_layers(short_cut, nheads)

    def forward(self, inputs):
        """Four maps ``[B, in_channels[i], H_i, W_i]`` -> ``[B, num_classes, H_0, W_0]``."""
        x = self.decode(inputs)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.conv_seg(x)
