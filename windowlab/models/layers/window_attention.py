"""(Shifted) window multi-head self-attention, the default attention of windowlab's Swin."""
import torch
from torch import nn
from torch.fx.experimental.symbolic_shapes import statically_known_true

from ...registry import LAYERS
from ..utils import is_symbolic
from .attention import attend
from .relative_position import RelativePositionBias
from .window import pad_to_multiple, shifted_window_mask, window_partition, window_reverse


@LAYERS.register_module()
class WindowMSA(nn.Module):
    """Window attention with relative position bias and optional cyclic shift (Swin).

    The map is zero-padded at the bottom/right to a multiple of the window, cyclically
    shifted by ``shift_size`` (with a mask between regions, see :func:`shifted_window_mask`), cut into windows,
    attended, and put back (un-shift, crop). Padded tokens are not masked in unshifted
    windows, as in the official detection code.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): attention heads; head dim is ``C // num_heads``.
        window_size (int): side of a square window.
        shift_size (int): cyclic shift (0 for W-MSA, ``window_size // 2`` for SW-MSA).
        qkv_bias (bool): bias in the qkv projection.
        attn_drop (float): dropout on attention weights.
        proj_drop (float): dropout after the output projection.
        adaptive_window (bool): the official *classification* rule: when the map's shorter
            side is ``<= window_size``, use one window of that side and no shift. The
            official detection code (``False``) always shifts and pads instead.
        qk_scale (float, optional): logit scale; ``head_dim ** -0.5`` if None.
    """

    def __init__(self, embed_dims, num_heads, window_size, shift_size=0, qkv_bias=True,
                 attn_drop=0.0, proj_drop=0.0, adaptive_window=False, qk_scale=None):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        if not 0 <= shift_size < window_size:
            raise ValueError(f'shift_size must be in [0, window_size), got {shift_size}')
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.adaptive_window = adaptive_window
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.rel_pos = RelativePositionBias((window_size, window_size), num_heads)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def window_and_shift(self, hw_shape):
        """The ``(window, shift)`` used for a map of ``hw_shape``."""
        if not self.adaptive_window:
            return self.window_size, self.shift_size
        h, w = hw_shape
        if is_symbolic(h, w):
            if statically_known_true(torch.sym_min(h, w) > self.window_size):
                return self.window_size, self.shift_size
            raise ValueError(
                f'the adaptive window (Swin classification rule) shrinks to maps of side <= '
                f'{self.window_size}, so one exported graph cannot serve every size: export at a '
                'fixed size, or with a minimum size (--min-shape) at which every stage map is '
                'larger than the window')
        side = int(min(h, w))  # int(): sizes are tensors while tracing (FLOP counting)
        if side <= self.window_size:
            return side, 0
        return self.window_size, self.shift_size

    def attend(self, windows, window_size, mask=None):
        """Self-attention inside windows: ``[nW*B, N, C]`` -> ``[nW*B, N, C]``.

        ``mask`` is ``[nW, N, N]`` (added to the logits of every image's windows).
        """
        bw, n, c = windows.shape
        qkv = self.qkv(windows).reshape(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                          # [nW*B, heads, N, d]
        bias = self.rel_pos((window_size, window_size)).to(q.dtype)   # [heads, N, N]
        if mask is not None:  # one bias per window, repeated for every image
            nw = mask.shape[0]
            bias = (bias + mask[:, None].to(bias.dtype)).expand(bw // nw, -1, -1, -1, -1)
            bias = bias.reshape(bw, self.num_heads, n, n)
        out = attend(q, k, v, bias, self.scale, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))

    def forward(self, x, hw_shape):
        """``x``: ``[B, H*W, C]`` with ``hw_shape = (H, W)`` -> ``[B, H*W, C]``."""
        b, _, c = x.shape
        h, w = hw_shape
        window, shift = self.window_and_shift(hw_shape)
        x, _ = pad_to_multiple(x.view(b, h, w, c), window)
        hp, wp = x.shape[1:3]
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(hp, wp, window, shift, device=x.device).to(x.dtype)
        windows = self.attend(window_partition(x, window), window, mask)
        x = window_reverse(windows, window, hp, wp)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x[:, :h, :w].reshape(b, h * w, c)
