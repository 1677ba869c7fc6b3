"""VWFormer decode head (mmseg 1.x) built on :class:`VaryingWindowAttention`."""
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from windowlab.registry import register_model

from .vw_decoder import VWDecodeLayers


@register_model(tasks=('seg', ))
class VWHead(VWDecodeLayers, BaseDecodeHead):
    """VWFormer head: multi-scale varying window attention on the stride-8 map.

    Data flow (``C = channels``), as in the official ``VWHead``:

    1. *Aggregation*: token-wise Linear layers map levels 2-4 (strides 8/16/32) to ``C``;
       levels 3 and 4 are bilinearly resized to the stride-8 size; ``fuse`` (1x1 conv, norm,
       act) maps the concatenation ``[c4, c3, c2]`` to ``C``.
    2. *Multi-scale*: five ``C``-channel branches, concatenated in this order: a 1x1
       ``short_path``, global ``image_pool``, and :class:`VaryingWindowAttention` with
       context ratios 2, 4 and 8; ``bottleneck`` (1x1 conv, norm, act) maps ``5C`` to ``C``.
    3. *Low-level enhancement*: the result is upsampled to stride 4, concatenated with a
       token-wise Linear projection of level 1 to 48 channels and fused by ``low_level_fuse``
       (1x1 conv, norm, act), followed by the classifier.

    Beyond the official head: every norm follows ``norm_cfg`` (the official code hard-codes
    SyncBN in five places) and any input size works (VWA pads the stride-8 map to a multiple
    of 8 internally and crops back, so ``ResizeToMultiple`` is not needed), and it exports
    with dynamic sizes (it resizes with ``F.interpolate``: mmseg's ``resize`` turns sizes into
    ints, which fixes an export to the traced size). Official VWFormer checkpoints convert
    with :func:`windowlab.projects.vwformer.converter.convert_vwformer`.

    The layers and the computation are :class:`~.vw_decoder.VWDecodeLayers`, shared with the
    plain-torch :class:`~.vw_decoder.VWDecoder` (same parameter names); this class adds what
    mmseg needs (losses, prediction, ``in_index``).

    Args:
        short_cut (bool): add the fused map to every VWA branch output.
        nheads (int): attention heads of each VWA branch (official name, 1 in every
            official ADE20K config).
        **kwargs: :class:`BaseDecodeHead` arguments. ``in_channels`` lists the channels of
            the four levels (strides 4, 8, 16, 32); ``channels`` must be divisible by 64.
            ``input_transform`` is always ``'multiple_select'``; ``conv_cfg`` must be None
            (the convs are plain ``Conv2d``).

    Shapes:
        inputs: four maps ``[B, in_channels[i], H_i, W_i]`` (strides 4/8/16/32);
        output: ``[B, num_classes, H_0, W_0]`` (stride 4).
    """

    def __init__(self, short_cut=True, nheads=1, **kwargs):
        if kwargs.pop('input_transform', 'multiple_select') != 'multiple_select':
            raise ValueError("VWHead uses all four levels: input_transform must be "
                             "'multiple_select'")
        super().__init__(input_transform='multiple_select', **kwargs)
        if self.conv_cfg is not None:
            raise ValueError(f'VWHead builds plain Conv2d layers; conv_cfg must be None, got '
                             f'{self.conv_cfg}')
        self._build_vw_layers(short_cut, nheads)

    def _check_inputs(self, inputs):
        if len(inputs) <= max(self.in_index):
            raise ValueError(
                f'VWHead got {len(inputs)} feature maps but in_index={self.in_index} needs '
                f'{max(self.in_index) + 1}; the backbone must return the 4 levels of strides '
                '4, 8, 16, 32 (e.g. out_indices=(0, 1, 2, 3))')
        for level, (i, cin) in enumerate(zip(self.in_index, self.in_channels)):
            if inputs[i].dim() != 4 or inputs[i].shape[1] != cin:
                raise ValueError(
                    f'VWHead level {level} (inputs[{i}]) should be [B, {cin}, H, W], got '
                    f'{tuple(inputs[i].shape)}; set in_channels to the backbone out channels')

    def forward(self, inputs):
        self._check_inputs(inputs)
        inputs = self._transform_inputs(inputs)
        return self.cls_seg(self.decode(inputs))
