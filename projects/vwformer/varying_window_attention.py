"""Varying window attention (VWA), the core operator of VWFormer.

Paper: "Multi-Scale Representations by Varying Window Attention for Semantic Segmentation"
(Yan et al., ICLR 2024). The query map is cut into a fixed ``n x n`` grid of local windows
(``p_h x p_w`` tokens each). Every query window attends to a *context* window that is
``R`` times larger per side and centred on it. To keep the cost of a local window:

1. a "pre-scaling" ``R x R`` conv (stride 1, BN, ReLU) reduces the channels from ``C`` to
   ``C / R**2``;
2. the map is extended at its borders by *copy-shift padding* (copies of shifted pixels,
   never zeros) so that border windows get full-size contexts;
3. each ``R p_h x R p_w`` context window is folded back to ``p_h x p_w`` tokens by
   space-to-depth, which restores ``C`` channels (order: row offset, column offset, channel);
4. plain multi-head attention between the ``p_h p_w`` query tokens and the ``p_h p_w``
   context tokens, an output projection whose norm starts at zero, and an optional shortcut.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, kaiming_init, normal_init

from windowlab.models.layers.attention import attend
from windowlab.models.layers.norm_act import ConvNormAct
from windowlab.models.utils import is_symbolic
from windowlab.registry import LAYERS


def _windows(x, dim, size, step, count):
    """The first ``count`` windows of ``size`` with stride ``step`` along ``dim``.

    Equals ``x.unfold(dim, size, step)`` (first ``count`` windows): ``dim`` becomes ``count``
    and a last dim of ``size`` is appended. It is an index selection, so an export keeps
    ``size`` and ``step`` symbolic (an unfold is traced at fixed sizes).
    """
    index = (torch.arange(count, device=x.device) * step)[:, None] + torch.arange(
        size, device=x.device)
    x = x.index_select(dim, index.flatten()).unflatten(dim, (count, size))
    return x.movedim(dim + 1, -1)


@LAYERS.register_module()
class VaryingWindowAttention(BaseModule):
    """Attention from local query windows to ``ratio``-times larger context windows.

    The module takes any ``H x W``: the map is zero-padded at the bottom/right to a multiple
    of ``num_windows`` (so that the fixed grid has equal windows) and the result is cropped
    back. Without padding it computes exactly the official VWFormer operator.

    Args:
        embed_dims (int): channels ``C`` of the input and output.
        ratio (int): context window side / query window side ``R``. ``C`` must be divisible
            by ``R**2`` (the pre-scaling conv outputs ``C / R**2`` channels).
        num_heads (int): attention heads; heads are contiguous channel groups.
        num_windows (int): windows per side of the fixed query grid (8 in VWFormer).
        short_cut (bool): add the input to the output.
        norm_cfg (dict): norm of the pre-scaling conv and of the output projection.
        act_cfg (dict): activation of the pre-scaling conv.
        init_cfg (dict, optional): mmengine init config.

    Shapes:
        ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self,
                 embed_dims,
                 ratio,
                 num_heads=1,
                 num_windows=8,
                 short_cut=True,
                 norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % (ratio * ratio):
            raise ValueError(f'embed_dims={embed_dims} must be divisible by ratio**2='
                             f'{ratio * ratio}: the pre-scaling conv maps C to C / ratio**2 '
                             'channels and space-to-depth must give C back')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if not 1 <= ratio <= num_windows:
            raise ValueError(f'ratio={ratio} must lie in [1, num_windows={num_windows}]: a '
                             'context window may not be wider than the whole map')
        self.embed_dims = embed_dims
        self.ratio = ratio
        self.num_heads = num_heads
        self.num_windows = num_windows
        self.short_cut = short_cut

        # "same"-size RxR conv: pads (R-1)//2 before and R//2 after each side.
        self.pre_scale = ConvNormAct(embed_dims, embed_dims // (ratio * ratio), ratio, norm_cfg,
                                     act_cfg)
        self.query = nn.Conv2d(embed_dims, embed_dims, 1)
        self.key = nn.Conv2d(embed_dims, embed_dims, 1)
        self.value = nn.Conv2d(embed_dims, embed_dims, 1)
        self.out_proj = ConvNormAct(embed_dims, embed_dims, 1, norm_cfg, act_cfg=None)

    def init_weights(self):
        """Non-local-block init as in the official code; the output starts at exactly 0."""
        super().init_weights()
        normal_init(self.query, std=0.01)
        kaiming_init(self.key)
        kaiming_init(self.value)
        if self.out_proj.with_norm:
            constant_init(self.out_proj.norm, 0)
        else:
            constant_init(self.out_proj.conv, 0)

    def extra_repr(self):
        return (f'ratio={self.ratio}, num_heads={self.num_heads}, '
                f'num_windows={self.num_windows}, short_cut={self.short_cut}')

    def _copy_shift_pad(self, x, dim, window):
        """Extend ``x`` along ``dim`` (2: rows, 3: columns) with copies of shifted pixels.

        With ``L = R p - (R + 1) p // 2`` the front gets ``x[(R+1)p//2 : R p]`` and the back
        ``x[w - R p : w - (R+1)p//2]``, so the unfold of kernel ``R p`` and stride ``p`` gives
        one context window per query window, centred on it.
        """
        size = x.shape[dim]
        span, inner = self.ratio * window, (self.ratio + 1) * window // 2
        front = x.narrow(dim, inner, span - inner)
        back = x.narrow(dim, size - span, span - inner)
        return torch.cat([front, x, back], dim=dim)

    def _context_windows(self, x, ph, pw):
        """``[B, C, H, W]`` -> context tokens ``[B * n * n, C, ph, pw]``."""
        r, n = self.ratio, self.num_windows
        x = F.pad(x, ((r - 1) // 2, r // 2, (r - 1) // 2, r // 2))
        x = self.pre_scale(x)  # [B, C / R^2, H, W]
        x = self._copy_shift_pad(x, 3, pw)
        x = self._copy_shift_pad(x, 2, ph)
        # Context windows of R*ph x R*pw with stride ph x pw: the first n per side (an
        # unfold would leave n + 1 for 1-pixel windows, where the official code fails).
        x = _windows(_windows(x, 2, r * ph, ph, n), 3, r * pw, pw, n)
        b, c = x.shape[:2]
        # [B, c, n, n, ph*R, pw*R] -> space-to-depth -> [B*n*n, (R R c), ph, pw]
        x = x.reshape(b, c, n, n, ph, r, pw, r).permute(0, 2, 3, 5, 7, 1, 4, 6)
        return x.reshape(b * n * n, r * r * c, ph, pw)

    def _heads(self, x, batch, ph, pw):
        """``[B*n*n, C, ph, pw]`` -> ``[B*n*n, heads, ph*pw, C/heads]``."""
        return x.reshape(batch, self.num_heads, -1, ph * pw).transpose(-1, -2)

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.num_windows
        pad_h, pad_w = (-h) % n, (-w) % n
        shortcut = x
        if is_symbolic(h, w) or pad_h or pad_w:  # a dynamic export pads by a possibly-0 amount
            x = F.pad(x, (0, pad_w, 0, pad_h))
        ph, pw = (h + pad_h) // n, (w + pad_w) // n
        windows = b * n * n

        # Query windows: [B, C, n*ph, n*pw] -> [B*n*n, C, ph, pw] (1x1 conv commutes).
        query = self.query(x).reshape(b, c, n, ph, n, pw).permute(0, 2, 4, 1, 3, 5)
        query = self._heads(query, windows, ph, pw)
        context = self._context_windows(x, ph, pw)
        key = self._heads(self.key(context), windows, ph, pw)
        value = self._heads(self.value(context), windows, ph, pw)

        out = attend(query, key, value)  # scale (C / heads) ** -0.5
        # [B*n*n, heads, ph*pw, d] -> [B, C, n*ph, n*pw]
        out = out.transpose(-1, -2).reshape(b, n, n, c, ph, pw)
        out = out.permute(0, 3, 1, 4, 2, 5).reshape(b, c, n * ph, n * pw)
        out = self.out_proj(out[:, :, :h, :w])
        return out + shortcut if self.short_cut else out
