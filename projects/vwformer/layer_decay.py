"""Layer-wise learning-rate decay for 4-stage backbones (the VWFormer training recipe).

The official VWFormer code trains Swin with mmseg 0.30's ``LearningRateDecayOptimizerConstructor``
extended by a Swin rule. mmseg 1.x only knows ConvNeXt/BEiT/MAE, so this module provides the
same rule for windowlab's 4-stage backbones (Swin, Swin-VSA, PolySwin, ViTAEv2-VSA, BiFormer,
PolyTwins). Where a parameter sits is the backbone's own ``layer_position(name)`` (the same
method that serves ``get_layer_depth``), so no key table is kept here:

* the stem (``patch_embed``, ``stem``, stage 0's reduction cell, ...): layer 0;
* stage 0 blocks: 1; stage 1 blocks: 2; stage 2 blocks: ``3 + block // 2``; stage 3 blocks:
  ``num_layers``;
* the down-sampling after stage ``s``: ``s + 1``;
* everything else (backbone output norms, decode head): ``num_layers + 1``.

A parameter of layer ``i`` gets ``lr = base_lr * decay_rate ** (num_layers + 1 - i)`` and,
if it is 1-D or a bias, no weight decay (the official rule; 2-D relative position tables do
decay, as in the official code).
"""
import json

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


def get_layer_id(name, num_layers, backbone):
    """Layer id of parameter ``name`` (a key of the segmentor) for ``num_layers`` layers;
    ``backbone`` is the segmentor's backbone (it places its own parameters)."""
    if not name.startswith('backbone.'):
        return num_layers + 1
    position = backbone.layer_position(name[len('backbone.'):])
    if position is None:
        return num_layers + 1
    if position[0] == 'stem':
        return 0
    if position[0] == 'downsample':
        return position[1] + 1
    _, stage, block = position
    if stage == 3:
        return num_layers
    layer_id = (1, 2, 3 + block // 2)[stage]
    if layer_id >= num_layers:
        raise ValueError(f'{name}: stage 2 block {block} needs num_layers > {layer_id}; set '
                         'paramwise_cfg.num_layers = 3 + ceil(depths[2] / 2) (6 for Swin-T, '
                         '12 for Swin-S/B/L, 7 for ViTAEv2-VSA-S)')
    return layer_id


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HierarchicalLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for 4-stage windowlab backbones (see :func:`get_layer_id`).

    ``paramwise_cfg``: ``num_layers`` (int, the id of the last stage) and ``decay_rate``
    (float).
    """

    def add_params(self, params, module, **kwargs):
        num_layers = self.paramwise_cfg['num_layers']
        decay_rate = self.paramwise_cfg['decay_rate']
        backbone = getattr(module, 'backbone', None)
        if not hasattr(backbone, 'layer_position') or len(backbone.depths) != 4:
            raise ValueError(
                'HierarchicalLayerDecayOptimizerConstructor needs a 4-stage windowlab backbone '
                '(Swin, Swin-VSA, PolySwin, ViTAEv2-VSA, BiFormer, PolyTwins: they place their '
                'parameters with layer_position); got ' + type(backbone).__name__)
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith('.bias')
            layer_id = get_layer_id(name, num_layers, backbone)
            key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = decay_rate**(num_layers + 1 - layer_id)
                groups[key] = dict(params=[], param_names=[], lr_scale=scale, group_name=key,
                                   lr=scale * self.base_lr,
                                   weight_decay=0. if no_decay else self.base_wd)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        if get_rank() == 0:
            summary = {k: dict(lr_scale=g['lr_scale'], weight_decay=g['weight_decay'],
                               num_params=len(g['params'])) for k, g in groups.items()}
            print_log(f'layer-wise lr decay groups: {json.dumps(summary, indent=1)}',
                      logger='current')
        params.extend(groups.values())
