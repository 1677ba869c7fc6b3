"""Varied-size window attention (VSA, Zhang et al., ECCV 2022).

Queries stay on the default ``ws x ws`` window grid. For every window and every head a small
regression branch (average-pool over the default window -> LeakyReLU -> 1x1 conv) predicts a
scale ``s = (s_x, s_y)`` and an offset ``o = (o_x, o_y)``; the head then attends to ``ws x ws``
keys/values *sampled* (bilinear ``grid_sample``) at::

    window centre + relative position * (1 + s) + o        (normalised [-1, 1] coordinates)

so each head looks at its own shifted and rescaled window. With the regression convs at zero
(their initialisation) VSA is exactly non-shifted window attention.
"""
import torch
import torch.nn.functional as F
from torch import nn

from windowlab.models.layers.attention import attend
from windowlab.models.layers.relative_position import RelativePositionBias
from windowlab.models.layers.window import map_to_tokens, pixelwise_linear, tokens_to_map
from windowlab.models.utils import is_symbolic
from windowlab.registry import LAYERS

PAD_MODES = ('bottom_right', 'symmetric')


def _unit_grid(n, like):
    """``torch.linspace(-1, 1, n)`` in the dtype/device of ``like``.

    ``torch.export`` fixes linspace's ``n`` at the traced size, so a symbolic ``n`` (dynamic
    export) builds the values from ``arange`` with linspace's rule (``-1 + i * step`` for the
    first half, ``1 - (n - 1 - i) * step`` for the second; equal up to float rounding).
    """
    if not is_symbolic(n):
        return torch.linspace(-1, 1, n, device=like.device, dtype=like.dtype)
    i = torch.arange(n, device=like.device, dtype=like.dtype)
    step = 2 / torch.sym_max(n - 1, 1)
    return torch.where(i < n // 2, -1 + i * step, 1 - (n - 1 - i) * step)


@LAYERS.register_module()
class VSAWindowAttention(nn.Module):
    """Varied-size window multi-head self-attention on ``[B, H*W, C]`` tokens.

    It takes no ``shift_size``: the learned windows already overlap, so the official code
    never shifts and Swin-VSA is built with ``shift_windows=False``.

    Args:
        embed_dims (int): input channels ``C``.
        num_heads (int): attention heads; each regresses its own windows.
        window_size (int): side of the default (query) window.
        qkv_bias (bool): bias of the qkv projection.
        attn_drop (float): dropout on attention weights.
        proj_drop (float): dropout after the output projection.
        out_dims (int, optional): output channels (the ViTAEv2 reduction cell projects the
            PRM concat to the token width here); defaults to ``embed_dims``.
        qk_scale (float, optional): logit scale; defaults to ``(embed_dims // num_heads)**-0.5``,
            i.e. from the *input* width as the official code does, also when ``out_dims``
            differs (the real head dim is then ``out_dims // num_heads``).
        pad_mode (str): ``'bottom_right'`` (official classification code) or ``'symmetric'``
            (official detection code: ``pad // 2`` on top/left). Maps whose sides are not
            multiples of ``window_size`` are zero-padded *after* the qkv projection, so padded
            keys/values are 0, and the output is cropped back.
        swap_offset_norm (bool): the raw offsets are divided by the number of whole windows
            along their axis (``o_x / (W // ws)``, ``o_y / (H // ws)``). The official detection
            code swaps the two divisors (``o_x / (H // ws)``, ``o_y / (W // ws)``); ``True``
            reproduces that. Divisors are clamped to >= 1, so sides shorter than the window
            give finite results (the official code divides by zero there).
        use_cpe (bool): add a depth-wise ``(2*(ws//2)+1)``-sized conditional position
            encoding to the input, ``x + DWConv(x)``, before the attention. ViTAEv2-VSA keeps
            its CPE in the cell (before the LayerNorm) and sets this False.
    """

    def __init__(self, embed_dims, num_heads, window_size=7, qkv_bias=True,
                 attn_drop=0.0, proj_drop=0.0, out_dims=None, qk_scale=None,
                 pad_mode='bottom_right', swap_offset_norm=False, use_cpe=False):
        super().__init__()
        out_dims = out_dims or embed_dims
        if out_dims % num_heads:
            raise ValueError(f'out_dims {out_dims} is not divisible by num_heads {num_heads}')
        if pad_mode not in PAD_MODES:
            raise ValueError(f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
        self.num_heads = num_heads
        self.window_size = window_size
        self.out_dims = out_dims
        self.pad_mode = pad_mode
        self.swap_offset_norm = swap_offset_norm
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5

        self.cpe = None
        if use_cpe:
            k = window_size // 2 * 2 + 1
            self.cpe = nn.Conv2d(embed_dims, embed_dims, k, padding=k // 2, groups=embed_dims)
        # Window regression: one (x, y) pair per head and default window.
        self.sampling_offsets = nn.Conv2d(embed_dims, num_heads * 2, 1)
        self.sampling_scales = nn.Conv2d(embed_dims, num_heads * 2, 1)
        self.qkv = nn.Linear(embed_dims, out_dims * 3, bias=qkv_bias)
        self.rel_pos = RelativePositionBias((window_size, window_size), num_heads)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(out_dims, out_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_regression()

    def reset_regression(self):
        """Zero the regression convs: VSA starts as plain window attention."""
        for conv in (self.sampling_offsets, self.sampling_scales):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def _pads(self, h, w):
        """``(top, bottom, left, right)`` zero padding to whole windows."""
        ws = self.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        top, left = (pad_h // 2, pad_w // 2) if self.pad_mode == 'symmetric' else (0, 0)
        return top, pad_h - top, left, pad_w - left

    def regress_windows(self, x, hw_shape):
        """Predict each head's window scales and offsets.

        Args:
            x (Tensor): ``[B, C, Hp, Wp]`` padded input map.
            hw_shape (tuple[int, int]): unpadded ``(H, W)`` (sets the offset normalisation).

        Returns:
            tuple[Tensor, Tensor]: ``scales`` and normalised ``offsets``, each
            ``[B * heads, 2, nH, nW]`` with channel 0 = x, 1 = y.
        """
        b = x.shape[0]
        pooled = F.leaky_relu(F.avg_pool2d(x, self.window_size))
        nh, nw = pooled.shape[-2:]
        # The 1x1 regression convs as matmuls (oneDNN costs ~0.2 s per backward on these maps).
        scales, offsets = (
            pixelwise_linear(pooled, conv.weight.flatten(1), conv.bias).reshape(
                b * self.num_heads, 2, nh, nw)
            for conv in (self.sampling_scales, self.sampling_offsets))
        h, w = hw_shape
        div_x, div_y = (h, w) if self.swap_offset_norm else (w, h)
        # sym_max: the sizes stay symbolic in a dynamic export (the same ints otherwise).
        div_x, div_y = (torch.sym_max(d // self.window_size, 1) for d in (div_x, div_y))
        return scales, torch.stack([offsets[:, 0] / div_x, offsets[:, 1] / div_y], 1)

    def sampling_grid(self, scales, offsets, padded_hw):
        """Sampling positions of keys/values, ``[B * heads, Hp, Wp, 2]`` in ``[-1, 1]`` (x, y).

        Every pixel's default position is its place on a ``linspace(-1, 1)`` grid over the
        padded map (``align_corners=True``). Inside a window it is moved to
        ``centre + (1 + s) * (p - centre) + o``.
        """
        ws = self.window_size
        hp, wp = padded_hw
        nh, nw = hp // ws, wp // ws
        ys, xs = (_unit_grid(n, scales) for n in (hp, wp))
        # Position relative to the window centre, per axis: [ws] (spacing 2 / (side - 1)).
        idx = torch.arange(ws, device=scales.device, dtype=scales.dtype)
        rel_y = (idx - (ws - 1) / 2) * 2 / torch.sym_max(hp - 1, 1)
        rel_x = (idx - (ws - 1) / 2) * 2 / torch.sym_max(wp - 1, 1)
        base = torch.stack([xs.view(1, 1, nw, ws).expand(nh, ws, nw, ws),
                            ys.view(nh, ws, 1, 1).expand(nh, ws, nw, ws)])   # [2, nh, ws, nw, ws]
        rel = torch.stack([rel_x.view(1, 1, 1, ws).expand(nh, ws, nw, ws),
                           rel_y.view(1, ws, 1, 1).expand(nh, ws, nw, ws)])
        grid = (base + rel * scales[:, :, :, None, :, None]
                + offsets[:, :, :, None, :, None])                        # [BH, 2, nh, ws, nw, ws]
        return grid.permute(0, 2, 3, 4, 5, 1).reshape(-1, hp, wp, 2)

    def _to_windows(self, t, b, nh, nw):
        """``[B*heads, d, Hp, Wp]`` -> ``[B*nH*nW, heads, ws*ws, d]``."""
        ws, d = self.window_size, t.shape[1]
        t = t.reshape(b, self.num_heads, d, nh, ws, nw, ws)
        return t.permute(0, 3, 5, 1, 4, 6, 2).reshape(b * nh * nw, self.num_heads, ws * ws, d)

    def forward(self, x, hw_shape, return_windows=False):
        """``x``: ``[B, H*W, C]`` with ``hw_shape = (H, W)`` -> ``[B, H*W, out_dims]``.

        With ``return_windows=True`` also returns the sampling grid ``[B, heads, Hp, Wp, 2]``
        and the padding ``(top, bottom, left, right)`` (for visualisation).
        """
        b, n, _ = x.shape
        h, w = hw_shape
        if n != h * w:
            raise ValueError(f'got {n} tokens for hw_shape {tuple(hw_shape)}')
        ws, heads = self.window_size, self.num_heads
        d = self.out_dims // heads
        if self.cpe is not None:
            x = x + map_to_tokens(self.cpe(tokens_to_map(x, hw_shape)))
        top, bottom, left, right = pads = self._pads(h, w)
        hp, wp = h + top + bottom, w + left + right
        nh, nw = hp // ws, wp // ws

        x_map = F.pad(tokens_to_map(x, hw_shape), (left, right, top, bottom))
        scales, offsets = self.regress_windows(x_map, (h, w))
        # Positions in float32 also under mixed precision (fp16 would move samples by ~0.1 px).
        grid = self.sampling_grid(scales.float(), offsets.float(), (hp, wp))

        # qkv on the unpadded tokens, then zero-padded maps: [3, B*heads, d, Hp, Wp].
        qkv = self.qkv(x).reshape(b, h, w, 3, heads, d).permute(3, 0, 4, 5, 1, 2)
        qkv = F.pad(qkv.reshape(3, b * heads, d, h, w), (left, right, top, bottom))
        q, kv = qkv[0], torch.cat([qkv[1], qkv[2]], dim=1)
        kv = F.grid_sample(kv.to(grid.dtype), grid, mode='bilinear', padding_mode='zeros',
                           align_corners=True).to(q.dtype)
        k, v = kv[:, :d], kv[:, d:]

        q, k, v = (self._to_windows(t, b, nh, nw) for t in (q, k, v))
        out = attend(q, k, v, self.rel_pos().to(q.dtype), self.scale,
                     self.attn_drop if self.training else 0.0)           # [B*nW, heads, N, d]
        out = out.reshape(b, nh, nw, heads, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(b, hp, wp, heads * d)[:, top:top + h, left:left + w]
        out = self.proj_drop(self.proj(out.reshape(b, h * w, heads * d)))
        if return_windows:
            return out, grid.reshape(b, heads, hp, wp, 2), pads
        return out
