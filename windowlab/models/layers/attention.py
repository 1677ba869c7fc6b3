"""The attention core: every windowlab attention (window, varied-size, routed, global) ends in
:func:`attend`.

Two paths compute ``softmax(scale * q k^T + bias) v``:

* ``'fused'`` (default): :func:`torch.nn.functional.scaled_dot_product_attention`, with the
  relative-position bias and any mask folded into its one additive ``attn_mask``. It never keeps
  the logits for backward (CPU and CUDA flash kernels), which is where the speed comes from.
  (On CPU, a bias that needs a gradient has no fused kernel: the plain ops run instead.)
* ``'reference'``: the plain matmul -> softmax -> matmul of the papers' code, kept as the
  ground truth. In float64 the two paths agree to ~1e-15.

:func:`attention_impl` selects the path for a block of code (the device check and the benchmark
compare them); models carry no switch of their own, so checkpoints and configs are unaffected.
"""
import torch
import torch.nn.functional as F

IMPLS = ('fused', 'reference')
_impl = 'fused'


class attention_impl:  # noqa: N801 (used like a function: ``with attention_impl('reference'):``)
    """Run the enclosed code with the ``'fused'`` or ``'reference'`` attention path (reusable)."""

    def __init__(self, impl):
        if impl not in IMPLS:
            raise ValueError(f'attention impl must be one of {IMPLS}, got {impl!r}')
        self.impl = impl
        self._previous = []

    def __enter__(self):
        global _impl
        self._previous.append(_impl)
        _impl = self.impl

    def __exit__(self, *exc):
        global _impl
        _impl = self._previous.pop()


def with_current_impl(fn):
    """``fn`` bound to the path selected now: for activation checkpointing, whose recomputation
    in backward must take the path the forward took, whatever is selected when backward runs."""
    impl = _impl

    def run(*args):
        with attention_impl(impl):
            return fn(*args)

    return run


def _needs_bias_grad_on_cpu(q, bias):
    """PyTorch's fused CPU kernel takes no gradient for the mask: for a trainable bias (the
    relative-position table while training) it falls back to its math path, ~20% slower than
    the plain one, so the fused path runs the plain ops there."""
    return (q.device.type == 'cpu' and bias is not None and bias.requires_grad
            and torch.is_grad_enabled())


def attend(q, k, v, bias=None, scale=None, dropout_p=0.0):
    """Queries attend to keys/values: ``softmax(scale * q k^T + bias) v``.

    Args:
        q (Tensor): ``[*, Lq, d]`` queries (4-D ``[B, heads, Lq, d]`` takes the fastest kernels).
        k (Tensor): ``[*, Lk, d]`` keys.
        v (Tensor): ``[*, Lk, dv]`` values.
        bias (Tensor, optional): broadcastable to ``[*, Lq, Lk]``: additive logits in the
            dtype of ``q`` (relative position bias, shifted-window mask, or their sum), or a
            boolean mask (``True``: attend; every query needs one key it attends to).
        scale (float, optional): logit scale; ``d ** -0.5`` if None.
        dropout_p (float): dropout on the attention probabilities (pass 0 in eval mode).

    Returns:
        Tensor: ``[*, Lq, dv]``.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if _impl == 'fused' and not _needs_bias_grad_on_cpu(q, bias):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p,
                                              scale=scale)
    attn = (q * scale) @ k.transpose(-2, -1)
    if bias is not None and bias.dtype == torch.bool:
        attn = attn.masked_fill(~bias, float('-inf'))
    elif bias is not None:
        attn = attn + bias
    attn = attn.softmax(dim=-1)
    if dropout_p:
        attn = F.dropout(attn, dropout_p)
    return attn @ v
