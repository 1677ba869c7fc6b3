"""Window partitioning helpers shared by every window-attention kernel, and the two token
layouts (``[B, H*W, C]`` tokens, ``[B, C, H, W]`` maps)."""
import torch
import torch.nn.functional as F

from ..utils import is_symbolic

# Logit added between regions of a shifted window. The official code adds -100, whose softmax
# weights (~e**-100 relative to the others) are denormal floats: they change the outputs by far
# less than float32 rounding (the fixtures pass unchanged) yet make the next matmul many times
# slower on CPU. -1e4 underflows to exactly 0 instead and stays finite in float16/bfloat16.
MASK_VALUE = -1e4


def pad_to_multiple(x, multiple, hw_dims=(1, 2)):
    """Zero-pad the bottom/right of ``x`` so both spatial sides are multiples of ``multiple``.

    Args:
        x (Tensor): a map whose spatial dims are ``hw_dims`` (default ``[B, H, W, C]``).
        multiple (int | tuple[int, int]): the required multiple per side.

    Returns:
        tuple[Tensor, tuple[int, int]]: the padded map and the ``(pad_h, pad_w)`` added.
    """
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else multiple
    h, w = x.shape[hw_dims[0]], x.shape[hw_dims[1]]
    pad_h, pad_w = (-h) % mh, (-w) % mw
    if is_symbolic(h, w) or pad_h or pad_w:  # a dynamic export pads by a possibly-zero amount
        # F.pad lists pads from the last dim backwards.
        pads = [0, 0] * (x.dim() - hw_dims[0])
        pads[2 * (x.dim() - 1 - hw_dims[1]) + 1] = pad_w
        pads[2 * (x.dim() - 1 - hw_dims[0]) + 1] = pad_h
        x = F.pad(x, pads)
    return x, (pad_h, pad_w)


def tokens_to_map(x, hw_shape):
    """``[B, H*W, C]`` tokens -> ``[B, C, H, W]`` map: a channels-last view (no copy).

    Convolutions on it run channels-last, several times faster on CPU than on contiguous maps
    for depth-wise and grouped ones (most of all in backward), and give channels-last maps.
    """
    b, _, c = x.shape
    return x.reshape(b, *hw_shape, c).permute(0, 3, 1, 2)


def map_to_tokens(x):
    """``[B, C, H, W]`` map -> ``[B, H*W, C]`` tokens (a view of a channels-last map)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])


def pixelwise_linear(x, weight, bias=None):
    """A linear map of the channels of every pixel, as one matmul (a ``Linear``'s weight, or a
    1x1 conv's flattened: the same numbers without oneDNN's per-call cost on tiny maps).

    ``x [B, C_in, H, W]``, ``weight [C_out, C_in]``, ``bias [C_out]`` -> ``[B, C_out, H, W]``.
    """
    return F.linear(x.permute(0, 2, 3, 1), weight, bias).permute(0, 3, 1, 2)


def window_partition(x, window_size):
    """Cut ``[B, H, W, C]`` into non-overlapping windows.

    Returns:
        Tensor: ``[B * nH * nW, window_size * window_size, C]``.
    """
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows, window_size, h, w):
    """Inverse of :func:`window_partition`: ``[B * nW, ws * ws, C]`` -> ``[B, H, W, C]``."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window_size) * (w // window_size))
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def shifted_window_mask(h, w, window_size, shift_size, device=None):
    """Attention mask of shifted-window attention (Swin), built for a padded ``h x w`` map.

    Tokens that come from different regions of the cyclically shifted map must not attend
    to each other; they get :data:`MASK_VALUE`, the rest ``0``.

    Returns:
        Tensor: ``[nW, ws * ws, ws * ws]``.
    """
    img_mask = torch.zeros(1, h, w, 1, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    region = 0
    for hs in bounds:
        for ws in bounds:
            img_mask[:, hs, ws, :] = region
            region += 1
    ids = window_partition(img_mask, window_size).squeeze(-1)
    mask = ids.unsqueeze(1) - ids.unsqueeze(2)
    return mask.masked_fill(mask != 0, MASK_VALUE).masked_fill(mask == 0, 0.0)
