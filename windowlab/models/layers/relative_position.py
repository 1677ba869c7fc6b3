"""Learned relative position bias of window attention (Swin, VSA)."""
import math

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import nn


def relative_position_index(window_size, table_window=None):
    """Index into a ``(2Th-1)(2Tw-1)`` bias table for every (query, key) pair of a window.

    Args:
        window_size (tuple[int, int]): ``(Wh, Ww)``.
        table_window (tuple[int, int], optional): ``(Th, Tw)``, the window the table was
            built for (default: ``window_size``); a smaller window indexes its sub-table.

    Returns:
        LongTensor: ``[Wh * Ww, Wh * Ww]``.
    """
    wh, ww = window_size
    th, tw = table_window or window_size
    if wh > th or ww > tw:
        raise ValueError(f'window {tuple(window_size)} is larger than the bias table '
                         f'built for {tuple(table_window)}')
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij'))
    coords = coords.flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]
    return (rel[0] + th - 1) * (2 * tw - 1) + rel[1] + tw - 1


def resize_bias_table(table, size):
    """Bicubic resize of a square bias table, as the official Swin codes do when the
    pretrained window differs from the model's (microsoft/Swin-Transformer ``utils.py``,
    Swin-Transformer-Object-Detection ``mmcv_custom/checkpoint.py``).

    Args:
        table (Tensor): ``[S1 * S1, num_heads]`` with ``S1 = 2 * window - 1``.
        size (tuple[int, int]): ``(S2h, S2w)`` offsets per side of the target table.

    Returns:
        Tensor: ``[S2h * S2w, num_heads]``.
    """
    side = math.isqrt(table.shape[0])
    heads = table.shape[1]
    grid = table.permute(1, 0).reshape(1, heads, side, side)
    resized = F.interpolate(grid.float(), size=tuple(size), mode='bicubic').to(table.dtype)
    return resized.reshape(heads, -1).permute(1, 0).contiguous()


class RelativePositionBias(nn.Module):
    """Per-head bias ``B[h, i, j]`` for the token pairs of one ``Wh x Ww`` window.

    Parameter ``table``: ``[(2Wh-1)(2Ww-1), num_heads]``. ``forward(window_size)`` returns
    ``[num_heads, N, N]`` with ``N = Wh * Ww``. A smaller window than the built one (Swin's
    classification code shrinks the window to a small feature map) uses the sub-table of
    its offsets.
    """

    def __init__(self, window_size, num_heads):
        super().__init__()
        self.window_size = tuple(window_size)
        wh, ww = self.window_size
        self.table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        self.register_buffer('index', relative_position_index(self.window_size), persistent=False)
        nn.init.trunc_normal_(self.table, std=0.02)

    def adapt_loaded_state(self, state_dict, prefix=''):
        """Resize ``state_dict[prefix + 'table']`` in place if it was trained for another
        square window with the same heads; anything else is left for the loader to report."""
        key = prefix + 'table'
        table = state_dict.get(key)
        if table is None or table.dim() != 2 or tuple(table.shape) == tuple(self.table.shape):
            return
        side = math.isqrt(table.shape[0])
        if table.shape[1] != self.table.shape[1] or side * side != table.shape[0] or side % 2 == 0:
            return
        size = (2 * self.window_size[0] - 1, 2 * self.window_size[1] - 1)
        state_dict[key] = resize_bias_table(table, size)
        print_log(f'resized {key} from {side}x{side} offsets (window {(side + 1) // 2}) to '
                  f'{size[0]}x{size[1]} (window {self.window_size[0]}x{self.window_size[1]}), '
                  'bicubic as the official code', logger='current')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.adapt_loaded_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, window_size=None):
        window_size = tuple(window_size or self.window_size)
        if window_size == self.window_size:
            index = self.index
        else:
            index = relative_position_index(window_size, self.window_size).to(self.table.device)
        n = index.shape[0]
        bias = self.table[index.reshape(-1)].view(n, n, -1)
        return bias.permute(2, 0, 1).contiguous()
