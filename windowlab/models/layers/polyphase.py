"""Adaptive polyphase anchoring (Ding et al., "Reviving Shift Equivariance in Vision Transformers").

A map ``x`` of spatial size ``H x W`` splits, for a factor ``p``, into ``p * p`` polyphase
components ``x[..., i::p, j::p]``. Anchoring picks, per sample, the component with the largest
L2 norm over all channels and positions and circularly rolls the map by ``(-i, -j)`` so that
this component sits at the origin. A circular shift of the input by ``s`` moves the winning
component by ``s mod p``, so the anchored map changes only by a circular shift that is a
multiple of ``p``: any stride-``p`` operation after it (patch embedding, ``p x p`` windows,
``p``-strided sub-sampling) sees the same grid up to a permutation of its cells.

Ties (:func:`select_anchors`). Right after a LayerNorm at its default initialisation every
token has the same norm, so all components tie in exact arithmetic and float rounding (batch
composition, summation order, dtype) would pick the anchor. Instead:

1. candidates are the components whose norm is within a relative ``TIE_RTOL`` (``1e-4``) of
   the largest norm; for float16/bfloat16 maps the tolerance is their machine epsilon
   (``9.8e-4`` / ``7.8e-3``), the rounding of a single element, because rounding a map of
   exactly tied components to bfloat16 spreads their norms by up to ``5e-4``;
2. among them, the largest *tie-break key* wins: the component's channel sums projected on
   the ramp ``w_c = c + 1`` (``sum_{positions, c} w_c * x``), compared with tolerance
   ``TIE_RTOL`` times its Cauchy-Schwarz bound ``|w| * sqrt(n) * max_norm`` (``n`` positions
   per component);
3. remaining ties go to the first component in row-major order ``i * pw + j``.

Norms and keys do not change when a component's grid is rolled, which is all a circular
shift of the input does to a component besides renaming it, so rules 1-2 are covariant with
circular shifts; only rule 3 (components equal in norm *and* key, e.g. a constant map) is
not. Where the largest norm leads by more than ``TIE_RTOL`` (trained weights, the official
fixtures) the anchor is the official one. Norms and keys are accumulated in float32 for
float16/bfloat16 inputs (float64 inputs in float64). Selection is tensor-only (no Python
branching on values), so it traces.

Unlike the official ``PolyOrder`` autograd function, this implementation

* keeps the input's device and dtype (the official op forces CUDA and returns float32),
* differentiates exactly (the roll is a permutation; the official Swin copy has a wrong
  hand-written backward),
* accepts any ``p >= 1`` (an int or a ``(ph, pw)`` pair) and non-square maps, and raises a
  ``ValueError`` naming the fix for sides that are not multiples of ``p``.

The anchors chosen by every call can be captured with :class:`AnchorRecorder`::

    with AnchorRecorder() as rec:
        model(x)
    rec.anchors  # LongTensor [n_calls, B, 2], in forward order
"""
import torch
from torch import nn

from ...registry import LAYERS

_ACTIVE_RECORDERS = []


def _pair(p):
    ph, pw = (p, p) if isinstance(p, int) else tuple(p)
    if ph < 1 or pw < 1:
        raise ValueError(f'polyphase factor must be >= 1, got {p}')
    return int(ph), int(pw)


TIE_RTOL = 1e-4  # relative tolerance under which two polyphase components tie (module doc)


def _components(x, p, hw_dims):
    """``x`` as ``[B, H/ph, ph, W/pw, pw, rest]`` (detached, >= float32), checking sizes."""
    ph, pw = _pair(p)
    hd, wd = hw_dims
    if x.dim() < 3 or 0 in (hd, wd) or hd == wd:
        raise ValueError(f'hw_dims {hw_dims} must name two distinct non-batch dims of a '
                         f'{x.dim()}-d tensor')
    h, w = x.shape[hd], x.shape[wd]
    if h % ph or w % pw:
        raise ValueError(
            f'polyphase anchoring with p=({ph}, {pw}) needs spatial sides that are multiples '
            f'of p, got {h}x{w}; resize or pad the input (e.g. images to a multiple of the '
            'total stride) or choose a factor that divides the map size')
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    # Bring the map to [B, H, W, rest] and split each side into (grid, phase).
    return x.movedim((hd, wd), (1, 2)).reshape(x.shape[0], h // ph, ph, w // pw, pw, -1)


def polyphase_norms(x, p, hw_dims=(2, 3)):
    """Per-sample L2 norm of every polyphase component of ``x``.

    Args:
        x (Tensor): a batch of maps; dim 0 is the batch, ``hw_dims`` the spatial dims
            (``(2, 3)`` for ``[B, C, H, W]``, ``(1, 2)`` for ``[B, H, W, C]``).
        p (int | tuple[int, int]): polyphase factor per axis.

    Returns:
        Tensor: ``[B, ph * pw]`` (row-major ``i * pw + j``), in float32 for half/bfloat16
        inputs and in the input dtype otherwise. Not differentiable (anchors are discrete).
    """
    return _norms(_components(x, p, hw_dims))


def tie_break_keys(x, p, hw_dims=(2, 3)):
    """Per-sample tie-break key of every polyphase component, scaled into ``[-1, 1]``.

    The key of a component is ``sum_{positions, c} (c + 1) * x`` (``c`` indexes the flattened
    non-spatial dims) divided by its Cauchy-Schwarz bound ``|w| * sqrt(n) * max_norm``
    (``n`` positions per component, ``max_norm`` the sample's largest component norm), so one
    relative tolerance serves norms and keys.

    Returns:
        Tensor: ``[B, ph * pw]``, same dtype rules as :func:`polyphase_norms`.
    """
    comps = _components(x, p, hw_dims)
    return _keys(comps, _norms(comps))


def _norms(comps):
    return comps.square().sum(dim=(1, 3, 5)).flatten(1).sqrt()


def _keys(comps, norms):
    sums = comps.sum(dim=(1, 3)).flatten(1, 2)  # [B, ph * pw, rest]
    ramp = torch.arange(1, sums.shape[-1] + 1, device=sums.device, dtype=sums.dtype)
    n = comps.shape[1] * comps.shape[3]
    bound = ramp.norm() * n ** 0.5 * norms.amax(dim=1, keepdim=True)
    return (sums @ ramp) / bound.clamp_min(torch.finfo(sums.dtype).tiny)


def select_anchors(x, p, hw_dims=(2, 3), rtol=TIE_RTOL):
    """Per-sample ``(i, j)`` of the polyphase component with the largest L2 norm, ties
    (within ``rtol``) broken by the shift-covariant rule of the module docstring.

    Returns:
        LongTensor: ``[B, 2]`` on the device of ``x``.
    """
    _, pw = _pair(p)
    comps = _components(x, p, hw_dims)
    norms = _norms(comps)
    keys = _keys(comps, norms)
    eps = torch.finfo(x.dtype).eps if x.is_floating_point() else 0.0
    norm_rtol = max(rtol, eps)  # float16/bfloat16 maps: their own rounding
    tied = norms >= norms.amax(dim=1, keepdim=True) * (1 - norm_rtol)
    keys = keys.masked_fill(~tied, -2.0)  # keys lie in [-1, 1]
    best = tied & (keys >= keys.amax(dim=1, keepdim=True) - rtol)
    idx = best.to(norms.dtype).argmax(dim=1)  # the first maximal index
    return torch.stack((idx // pw, idx % pw), dim=1)


def roll_per_sample(x, shifts, hw_dims=(2, 3)):
    """Circularly roll every sample of ``x`` by its own ``shifts[b] = (dy, dx)``.

    Equals ``torch.roll(x[b], shifts[b], dims=hw_dims)`` for every ``b`` (the batch dim of
    ``x`` is 0). It is a gather, so its gradient is the exact inverse roll.

    Args:
        x (Tensor): a batch of maps.
        shifts (LongTensor): ``[B, 2]``.
    """
    hd, wd = hw_dims
    b, h, w = x.shape[0], x.shape[hd], x.shape[wd]
    shifts = shifts.to(device=x.device, dtype=torch.long)
    # tensor moduli: the ONNX exporter takes no symbolic size (dynamic H, W) as a divisor
    h_mod, w_mod = (torch.scalar_tensor(s, dtype=torch.long, device=x.device) for s in (h, w))
    rows = (torch.arange(h, device=x.device) - shifts[:, :1]) % h_mod  # [B, H]
    cols = (torch.arange(w, device=x.device) - shifts[:, 1:]) % w_mod  # [B, W]
    xm = x.movedim((hd, wd), (1, 2))  # [B, H, W, ...]
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = xm[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, ...]
    return out.movedim((1, 2), (hd, wd))


def polyphase_anchor(x, p, hw_dims=(2, 3)):
    """Roll each sample so that its max-norm polyphase component sits at the origin.

    Args:
        x (Tensor): e.g. ``[B, C, H, W]`` (default ``hw_dims``) or ``[B, H, W, C]``
            (``hw_dims=(1, 2)``); ``H`` and ``W`` must be multiples of ``p``.
        p (int | tuple[int, int]): polyphase factor (the stride / window of the next op).

    Returns:
        tuple[Tensor, LongTensor]: the anchored map (same shape, dtype and device as ``x``),
        equal to ``roll(x[b], (-i_b, -j_b))`` per sample, and the anchors ``[B, 2]``.
    """
    anchors = select_anchors(x, p, hw_dims)
    out = roll_per_sample(x, -anchors, hw_dims)
    if _ACTIVE_RECORDERS:
        hw = (x.shape[hw_dims[0]], x.shape[hw_dims[1]])
        for recorder in _ACTIVE_RECORDERS:
            recorder.add(anchors, _pair(p), hw)
    return out, anchors


class AnchorRecorder:
    """Context manager that records every :func:`polyphase_anchor` call made inside it.

    Attributes after (or during) the ``with`` block:
        anchors (LongTensor): ``[n_calls, B, 2]``, forward order.
        factors (list[tuple[int, int]]): ``p`` of each call.
        sizes (list[tuple[int, int]]): input ``(H, W)`` of each call.
    """

    def __init__(self):
        self.calls = []

    def add(self, anchors, p, hw):
        self.calls.append((anchors.detach().cpu(), p, hw))

    @property
    def anchors(self):
        if not self.calls:
            return torch.zeros(0, 0, 2, dtype=torch.long)
        return torch.stack([a for a, _, _ in self.calls])

    @property
    def factors(self):
        return [p for _, p, _ in self.calls]

    @property
    def sizes(self):
        return [hw for _, _, hw in self.calls]

    def __enter__(self):
        _ACTIVE_RECORDERS.append(self)
        return self

    def __exit__(self, *exc):
        _ACTIVE_RECORDERS.remove(self)
        return False


@LAYERS.register_module()
class PolyphaseAnchor(nn.Module):
    """Module form of :func:`polyphase_anchor` (no parameters).

    ``forward(x [B, C, H, W]) -> [B, C, H, W]`` (or channel-last with ``hw_dims=(1, 2)``).
    Use :func:`polyphase_anchor` directly where the anchors are needed (e.g. to roll a dense
    output back with :func:`roll_per_sample`).
    """

    def __init__(self, p, hw_dims=(2, 3)):
        super().__init__()
        self.p = _pair(p)
        self.hw_dims = tuple(hw_dims)

    def forward(self, x):
        return polyphase_anchor(x, self.p, self.hw_dims)[0]

    def extra_repr(self):
        return f'p={self.p}'
