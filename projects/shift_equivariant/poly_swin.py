"""PolySwin: windowlab's Swin (``WLSwinTransformer``) with polyphase anchoring plugged in.

The official PolySwin (Ding et al., 2023) changes Swin in four places, each a component here:

* stem: :class:`PolyPatchEmbed` (anchor ``p=4``, 4x4 stride-4 conv, LayerNorm);
* down-sampling: :class:`PolyPatchMerging` (anchor ``p=2``, 2x2 stride-2 conv ``C -> 2C``,
  LayerNorm) instead of patch merging;
* attention: :class:`PolyWindowMSA`, shifted windows *without* the shift mask, so that the
  windows of the rolled map wrap around the border;
* block: :class:`PolySwinBlock`, which anchors its input with ``p = window_size`` (the
  anchored map is also the shortcut) and is post-norm:
  ``x = a(x); x = x + norm1(attn(x)); x = x + norm2(mlp(x))``.

``roll_back=True`` (dense variant, not in the paper) rolls every block's output back by its
anchor. Blocks then commute with all circular shifts, the stem and down-sampling are anchored
with ``p`` equal to their stride, so each output level ``l`` (stride ``r_l``) of an input whose
sides are multiples of ``32 * window_size`` satisfies
``F_l(roll(x, s)) = roll(F_l(x), s / r_l)`` for circular shifts that are multiples of ``r_l``.
"""
from windowlab.models.backbones.swin import SwinBlock, WLSwinTransformer
from windowlab.models.layers.polyphase import polyphase_anchor, roll_per_sample
from windowlab.models.layers.window import window_partition, window_reverse
from windowlab.models.layers.window_attention import WindowMSA
from windowlab.registry import LAYERS, register_model

from . import layers  # noqa: F401  (registers PolyPatchEmbed / PolyPatchMerging)


@LAYERS.register_module()
class PolyWindowMSA(WindowMSA):
    """(Shifted) window attention without the shift mask (PolySwin).

    The cyclically shifted map is cut into windows and attended with the relative position
    bias only; tokens that wrap around the border attend to each other. With or without the
    shift, the layer commutes with circular shifts by multiples of the window.
    ``forward(x [B, H*W, C], (H, W)) -> [B, H*W, C]``; ``H, W`` must be multiples of the window.
    """

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        h, w = hw_shape
        window, shift = self.window_and_shift(hw_shape)
        if h % window or w % window:
            raise ValueError(f'PolyWindowMSA needs a map that is a multiple of the window '
                             f'{window}, got {h}x{w}; resize the input to a multiple of '
                             'patch_size * 2**(num_stages-1) * window_size')
        x = x.view(b, h, w, c)
        if shift:
            x = x.roll((-shift, -shift), dims=(1, 2))
        x = window_reverse(self.attend(window_partition(x, window), window), window, h, w)
        if shift:
            x = x.roll((shift, shift), dims=(1, 2))
        return x.reshape(b, h * w, c)


@LAYERS.register_module()
class PolySwinBlock(SwinBlock):
    """Anchored post-norm Swin block (same parameters as :class:`SwinBlock`).

    ``forward(x [B, H*W, C], (H, W)) -> [B, H*W, C]``. The input is anchored with
    ``p = attn.window_size``; with ``roll_back`` the output is rolled back by the anchor.
    """

    def __init__(self, embed_dims, attn_cfg, mlp_ratio=4.0, drop=0.0, drop_path=0.0,
                 roll_back=False):
        super().__init__(embed_dims, attn_cfg, mlp_ratio, drop, drop_path)
        self.roll_back = roll_back

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        fmap, anchors = polyphase_anchor(x.view(b, *hw_shape, c), self.attn.window_size, (1, 2))
        x = fmap.reshape(b, -1, c)
        x = x + self.drop_path(self.norm1(self.attn(x, hw_shape)))
        x = x + self.drop_path(self.norm2(self.mlp(x)))
        if self.roll_back:
            x = roll_per_sample(x.view(b, *hw_shape, c), anchors, (1, 2)).reshape(b, -1, c)
        return x


@register_model('PolySwin')
class PolySwin(WLSwinTransformer):
    """Polyphase-anchored Swin Transformer (``WLSwinTransformer`` + anchoring components).

    Args are those of :class:`WLSwinTransformer` except the component configs, plus
    ``roll_back`` (dense variant, see the module docstring); ``with_cp``, ``frozen_stages``
    and the other drop-in arguments pass through as keywords. The official checkpoints load
    through ``init_cfg=dict(type='Pretrained', ...)`` or
    :func:`windowlab.projects.shift_equivariant.converter.convert_polyswin`.
    """

    def __init__(self, arch='tiny', in_channels=3, patch_size=4, window_size=7, mlp_ratio=4.0,
                 qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1,
                 out_indices=(3,), roll_back=False, init_cfg=None, **kwargs):
        super().__init__(
            arch, in_channels, patch_size, window_size, mlp_ratio, qkv_bias, drop_rate,
            attn_drop_rate, drop_path_rate, out_indices,
            attn_cfg=dict(type='PolyWindowMSA', adaptive_window=True),
            block_cfg=dict(type='PolySwinBlock', roll_back=roll_back), shift_windows=True,
            patch_embed_cfg=dict(type='PolyPatchEmbed'),
            downsample_cfg=dict(type='PolyPatchMerging'), init_cfg=init_cfg, **kwargs)
        self.roll_back = roll_back
