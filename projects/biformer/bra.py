"""Bi-level routing attention (BRA) of BiFormer (Zhu et al., CVPR 2023).

The map is cut into ``n_win x n_win`` regions. Each region's mean query is compared with every
region's mean key; the ``topk`` best-matching regions are kept ("routing"), and every token of the
region attends to all tokens of its routed regions. A 5x5 depth-wise conv on V (local context
enhancement, LCE) is added before the output projection.

Two implementations of the token attention are selected with ``impl``:

* ``'gather'`` -- the released one: the key/value map is expanded to ``[N, P, P, T, C]`` and
  gathered to ``[N, P, topk, T, C]`` (``P`` regions of ``T`` tokens). Autograd keeps the gathered
  copies and the attention probabilities for backward, and the backward of the expanded gather
  materialises a ``P``-times larger gradient before summing it (the slowness and memory of the
  official code, their issues #21 and #50).
* ``'fast'`` (default) -- :func:`routed_attention`: q, k, v are laid out once as one block of
  tokens per (image, head, region); the routed blocks are picked with ``index_select`` straight
  into the batch layout of windowlab's attention core, and the selection and attention are
  recomputed in backward (activation checkpointing), so only the un-gathered q, k, v are kept
  and the key/value gradients are summed back by ``index_add_``. On CPU, when the routed regions
  are a large part of a small map, a masked dense attention over all tokens replaces the routed
  blocks (the same keys get weight). Same outputs and gradients (up to float rounding), much
  less memory kept between forward and backward, and no ``P``-times larger gradient.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from windowlab.models.layers.attention import attend, with_current_impl
from windowlab.models.utils import is_symbolic
from windowlab.registry import LAYERS


def to_regions(x, n_win):
    """``[N, H, W, C]`` -> ``[N, n_win**2, H*W / n_win**2, C]``, regions in row-major order."""
    n, h, w, c = x.shape
    rh, rw = h // n_win, w // n_win
    x = x.view(n, n_win, rh, n_win, rw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, n_win * n_win, rh * rw, c)


def from_regions(x, n_win, region_hw):
    """Inverse of :func:`to_regions`: ``[N, P, T, C]`` -> ``[N, H, W, C]``."""
    n, _, _, c = x.shape
    rh, rw = region_hw
    x = x.view(n, n_win, n_win, rh, rw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, n_win * rh, n_win * rw, c)


def to_head_regions(x, n_win, num_heads):
    """``[N, H, W, m*d]`` -> ``[N*m*n_win**2, T, d]``: one row block per (image, head, region)."""
    n, h, w, c = x.shape
    rh, rw = h // n_win, w // n_win
    x = x.view(n, n_win, rh, n_win, rw, num_heads, c // num_heads).permute(0, 5, 1, 3, 2, 4, 6)
    return x.reshape(n * num_heads * n_win * n_win, rh * rw, c // num_heads)


def from_head_regions(x, batch, n_win, region_hw):
    """Inverse of :func:`to_head_regions`: ``[N*m*P, T, d]`` -> ``[N, H, W, m*d]``."""
    rh, rw = region_hw
    d = x.shape[-1]
    x = x.view(batch, -1, n_win, n_win, rh, rw, d).permute(0, 2, 4, 3, 5, 1, 6)
    return x.reshape(batch, n_win * rh, n_win * rw, -1)


def head_region_index(region_idx, num_heads):
    """``[N, P, k]`` routed regions -> ``[N*m*P*k]`` rows of the ``[N*m*P, T, d]`` layout."""
    n, p, _ = region_idx.shape
    base = torch.arange(n * num_heads, device=region_idx.device).view(n, num_heads, 1, 1) * p
    return (region_idx.unsqueeze(1) + base).reshape(-1)


# On CPU the routed regions are attended as a masked dense attention when they are at least a
# quarter of all regions (BiFormer's stage 3: 16 of 49 or 64) and the map is small (a [H*W, H*W]
# mask per image): fewer, larger matmuls beat many tiny ones there (measured on CPU only; other
# devices take the routed blocks until measured).
DENSE_MIN_ROUTED_FRACTION = 0.25
DENSE_MAX_TOKENS = 1024


def _routed_blocks(q, k, v, region_idx, num_heads, scale):
    """Every (image, head, region) block of ``T`` queries attends to its ``k`` routed blocks,
    picked with ``index_select`` into the batch layout of the attention core."""
    n, h, w, _ = q.shape
    n_win = math.isqrt(region_idx.shape[1])
    index = head_region_index(region_idx, num_heads)
    q, k, v = (to_head_regions(t, n_win, num_heads) for t in (q, k, v))   # [N*m*P, T, d]
    # The routed key/value blocks of every query block, side by side: [N*m*P, 1, k*T, d].
    k, v = (t.index_select(0, index).view(q.shape[0], 1, -1, t.shape[-1]) for t in (k, v))
    out = attend(q.unsqueeze(1), k, v, scale=scale).squeeze(1)
    return from_head_regions(out, n, n_win, (h // n_win, w // n_win))


def _routed_dense(q, k, v, region_idx, num_heads, scale):
    """Every query attends to every token under a mask that keeps its region's routed regions.

    Masked logits get weight exactly 0, so this is the attention of :func:`_routed_blocks`
    (the same keys, summed in another order).
    """
    n, h, w, _ = q.shape
    p = region_idx.shape[1]
    n_win = math.isqrt(p)
    t = (h // n_win) * (w // n_win)
    # Tokens in region order, heads split: [N, m, P*T, d].
    q, k, v = (to_regions(x, n_win).reshape(n, p * t, num_heads, -1).transpose(1, 2)
               for x in (q, k, v))
    routed = torch.zeros(n, p, p, dtype=torch.bool, device=q.device)
    routed.scatter_(2, region_idx, True)
    mask = routed[:, None, :, None, :, None].expand(n, 1, p, t, p, t).reshape(n, 1, p * t, p * t)
    out = attend(q, k, v, mask, scale).transpose(1, 2).reshape(n, p, t, -1)
    return from_regions(out, n_win, (h // n_win, w // n_win))


def _exporting():
    """``torch.export`` / the ONNX exporters / ``torch.jit.trace`` (FLOP counting)."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def _routed_attention(q, k, v, region_idx, num_heads, scale):
    """:func:`routed_attention` as plain ops (autograd keeps what the attention saves)."""
    n, h, w, _ = q.shape
    p, topk = region_idx.shape[1:]
    # Exports and FLOP counts (tracing) take the routed blocks: the published algorithm.
    if (not _exporting() and q.device.type == 'cpu' and topk >= DENSE_MIN_ROUTED_FRACTION * p
            and h * w <= DENSE_MAX_TOKENS):
        return _routed_dense(q, k, v, region_idx, num_heads, scale)
    return _routed_blocks(q, k, v, region_idx, num_heads, scale)


def routed_attention(q, k, v, region_idx, num_heads, scale):
    """Token attention over routed regions, without keeping gathered copies for backward.

    ``q [N, H, W, Cqk]``, ``k [N, H, W, Cqk]``, ``v [N, H, W, Cv]``, ``region_idx [N, P, k]``
    -> ``[N, H, W, Cv]``, with ``P = n_win**2`` regions (``H, W`` multiples of ``n_win``, heads
    contiguous channel groups). Two exact layouts for the attention core
    (:func:`~windowlab.models.layers.attention.attend`):

    * routed blocks (:func:`_routed_blocks`): q, k, v are laid out once as one block of ``T``
      tokens per (image, head, region); the ``k`` routed key/value blocks of every block are
      picked with ``index_select`` straight into the batch layout (the routed blocks are just
      another batch); their gradients are summed back by ``index_add_``;
    * masked dense (:func:`_routed_dense`), when the routed regions are a large part of a small
      map: all tokens, with a mask keeping the routed regions.

    When gradients are needed the attention is recomputed in backward (activation
    checkpointing): only q, k, v (views of the qkv projection, which the LCE conv keeps anyway)
    and the indices are saved, never gathered copies, masks or probabilities.
    """
    if _exporting() or not torch.is_grad_enabled() or not (q.requires_grad or k.requires_grad
                                                          or v.requires_grad):
        return _routed_attention(q, k, v, region_idx, num_heads, scale)
    return checkpoint(with_current_impl(_routed_attention), q, k, v, region_idx, num_heads,
                      scale, use_reentrant=False, preserve_rng_state=False)


def gather_attention(q, kv, region_idx, num_heads, scale, qk_dims):
    """The released (expand + gather) token attention, kept as the reference.

    ``q [N, P, T, Cqk]``, ``kv [N, P, T, Cqk + Cv]`` (fused as in the released projection),
    ``region_idx [N, P, k]`` -> ``[N, P, T, Cv]``.
    """
    n, p, t, c_kv = kv.shape
    topk = region_idx.shape[-1]
    kv_sel = torch.gather(kv.unsqueeze(1).expand(-1, p, -1, -1, -1), 2,
                          region_idx.view(n, p, topk, 1, 1).expand(-1, -1, -1, t, c_kv))
    k_sel, v_sel = kv_sel.split([qk_dims, c_kv - qk_dims], -1)  # [N, P, k, T, C]
    k_sel = k_sel.reshape(n * p, topk * t, num_heads, -1).permute(0, 2, 3, 1)  # [N*P, m, C/m, k*T]
    v_sel = v_sel.reshape(n * p, topk * t, num_heads, -1).transpose(1, 2)  # [N*P, m, k*T, C/m]
    q = q.reshape(n * p, t, num_heads, -1).transpose(1, 2)  # [N*P, m, T, C/m]
    attn = torch.softmax((q * scale) @ k_sel, -1)
    out = attn @ v_sel
    return out.transpose(1, 2).reshape(n, p, t, c_kv - qk_dims)


@LAYERS.register_module()
class BiLevelRoutingAttention(nn.Module):
    """Bi-level routing attention on ``[N, H, W, C]`` maps (BiFormer's legacy, released BRA).

    Numerics of the released checkpoints: one ``Linear(C, 2*Cqk + C)`` gives q | k | v; the scale
    is ``Cqk ** -0.5`` with the *whole* ``Cqk`` (not the head width), for routing and attention;
    routing compares detached per-region means of q and k and keeps the ``topk`` largest; heads
    are contiguous channel groups; LCE (depth-wise conv with bias on V over the whole map) is
    added before ``proj``.

    With ``auto_pad`` (dense prediction) the input is zero-padded at the right/bottom to a
    multiple of ``n_win`` *before* the qkv projection, so padded tokens carry the projection
    bias, enter the routing means, are attended to and feed LCE; the output is cropped after
    ``proj``. Without it the map must be divisible by ``n_win``.

    Args:
        embed_dims (int): channels ``C`` of input, V and output.
        num_heads (int): attention heads.
        n_win (int): regions per side.
        topk (int): routed regions per region (``1 <= topk <= n_win**2``).
        qk_dims (int, optional): channels of q and k; defaults to ``embed_dims``.
        qk_scale (float, optional): overrides ``qk_dims ** -0.5``.
        lce_kernel (int): kernel of the depth-wise LCE conv on V.
        auto_pad (bool): pad to a multiple of ``n_win`` instead of requiring it.
        impl (str): ``'fast'`` (:func:`routed_attention`) or ``'gather'`` (released reference).
    """

    IMPLS = ('fast', 'gather')

    def __init__(self, embed_dims, num_heads, n_win=7, topk=4, qk_dims=None, qk_scale=None,
                 lce_kernel=5, auto_pad=False, impl='fast'):
        super().__init__()
        qk_dims = qk_dims or embed_dims
        if qk_dims % num_heads or embed_dims % num_heads:
            raise ValueError(f'qk_dims {qk_dims} and embed_dims {embed_dims} must be divisible '
                             f'by num_heads {num_heads}')
        if not 1 <= topk <= n_win * n_win:
            raise ValueError(f'topk must be in [1, n_win**2 = {n_win * n_win}], got {topk}')
        if impl not in self.IMPLS:
            raise ValueError(f'impl must be one of {self.IMPLS}, got {impl!r}')
        self.embed_dims, self.qk_dims, self.num_heads = embed_dims, qk_dims, num_heads
        self.n_win, self.topk, self.auto_pad, self.impl = n_win, topk, auto_pad, impl
        self.scale = qk_scale or qk_dims ** -0.5
        self.qkv = nn.Linear(embed_dims, 2 * qk_dims + embed_dims)
        self.lce = nn.Conv2d(embed_dims, embed_dims, lce_kernel, padding=lce_kernel // 2,
                             groups=embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def extra_repr(self):
        return (f'n_win={self.n_win}, topk={self.topk}, num_heads={self.num_heads}, '
                f'auto_pad={self.auto_pad}, impl={self.impl!r}')

    def pad(self, x):
        """Zero-pad ``[N, H, W, C]`` at the right/bottom to multiples of ``n_win`` (or check)."""
        h, w = x.shape[1:3]
        pad_b, pad_r = -h % self.n_win, -w % self.n_win
        if not (self.auto_pad and is_symbolic(h, w)) and not (pad_b or pad_r):
            return x  # (a dynamic export pads by a possibly-zero amount)
        if not self.auto_pad:
            raise ValueError(
                f'BiLevelRoutingAttention got a {h}x{w} map, not divisible by n_win={self.n_win}. '
                'Use auto_pad=True (as for detection/segmentation) or inputs whose stage maps are '
                f'multiples of n_win (e.g. {32 * self.n_win}x{32 * self.n_win} images for a '
                'BiFormer classifier).')
        return F.pad(x, (0, 0, 0, pad_r, 0, pad_b))

    def route(self, q, k):
        """Region indices ``[N, P, topk]`` from ``q, k [N, H, W, Cqk]`` maps (no gradient)."""
        n, h, w, c = q.shape
        shape = (n, self.n_win, h // self.n_win, self.n_win, w // self.n_win, c)
        q_region, k_region = (t.detach().view(shape).mean((2, 4)).reshape(n, -1, c) for t in (q, k))
        logits = (q_region * self.scale) @ k_region.transpose(-2, -1)  # [N, P, P]
        return torch.topk(logits, self.topk, dim=-1).indices

    def forward(self, x, return_routing=False):
        """``[N, H, W, C]`` -> ``[N, H, W, C]`` (and ``[N, P, topk]`` region indices if asked)."""
        h, w = x.shape[1:3]
        x = self.pad(x)
        region_hw = (x.shape[1] // self.n_win, x.shape[2] // self.n_win)
        qkv = self.qkv(x)
        q, k, v = qkv.split([self.qk_dims, self.qk_dims, self.embed_dims], -1)
        lce = self.lce(v.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        region_idx = self.route(q, k)
        if self.impl == 'fast':
            out = routed_attention(q, k, v, region_idx, self.num_heads, self.scale)
        else:
            kv = to_regions(qkv[..., self.qk_dims:], self.n_win)
            out = gather_attention(to_regions(q, self.n_win), kv, region_idx, self.num_heads,
                                   self.scale, self.qk_dims)
            out = from_regions(out, self.n_win, region_hw)
        out = self.proj(out + lce)
        if is_symbolic(h, w) or out.shape[1:3] != (h, w):
            out = out[:, :h, :w].contiguous()
        return (out, region_idx) if return_routing else out


@LAYERS.register_module()
class GlobalAttentionLCE(nn.Module):
    """Full self-attention with LCE on ``[N, H, W, C]`` maps (BiFormer's last stage).

    ``qkv`` has no bias; heads are contiguous channel groups with scale ``(C / m) ** -0.5``;
    the depth-wise LCE conv acts on the block input (not on V) and is added before ``proj``.
    """

    def __init__(self, embed_dims, num_heads=8, lce_kernel=5):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=False)
        self.lce = nn.Conv2d(embed_dims, embed_dims, lce_kernel, padding=lce_kernel // 2,
                             groups=embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x):
        n, h, w, c = x.shape
        q, k, v = self.qkv(x).view(n, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v)  # scale (C/m) ** -0.5
        out = out.transpose(1, 2).reshape(n, h, w, c)
        return self.proj(out + self.lce(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
