"""Layer-wise learning-rate decay for 4-stage backbones (the VWFormer training recipe).

The official VWFormer code trains Swin with mmseg 0.30's ``LearningRateDecayOptimizerConstructor``
extended by a Swin rule. mmseg 1.x only knows ConvNeXt/BEiT/MAE, so this module provides the
same rule for windowlab's hierarchical backbones:

* ``backbone.patch_embed`` / ``backbone.stem``: layer 0;
* stage 0 blocks: 1; stage 1 blocks: 2; stage 2 blocks: ``3 + block // 2``; stage 3 blocks:
  ``num_layers``;
* the down-sampling after stage ``s`` (``stages.s.downsample``, or ``downsamples.s`` for
  BiFormer): ``s + 1``;
* everything else (backbone output norms, decode head): ``num_layers + 1``.

A parameter of layer ``i`` gets ``lr = base_lr * decay_rate ** (num_layers + 1 - i)`` and,
if it is 1-D or a bias, no weight decay (the official rule; 2-D relative position tables do
decay, as in the official code).
"""
import json
import re

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

_EMBED = re.compile(r'^backbone\.(patch_embed|stem|absolute_pos_embed)\b')
_DOWNSAMPLE = re.compile(r'^backbone\.(?:stages\.(\d+)\.downsample|downsamples\.(\d+))\.')
_BLOCK = re.compile(r'^backbone\.stages\.(\d+)\.(?:blocks\.)?(\d+)\.')


def get_layer_id(name, num_layers):
    """Layer id of parameter ``name`` (a key of the segmentor) for ``num_layers`` layers."""
    if _EMBED.match(name):
        return 0
    match = _DOWNSAMPLE.match(name)
    if match:
        return int(match.group(1) or match.group(2)) + 1
    match = _BLOCK.match(name)
    if match:
        stage, block = int(match.group(1)), int(match.group(2))
        if stage == 3:
            return num_layers
        layer_id = (1, 2, 3 + block // 2)[stage]
        if layer_id >= num_layers:
            raise ValueError(f'{name}: stage 2 block {block} needs num_layers > {layer_id}; set '
                             'paramwise_cfg.num_layers = 3 + ceil(depths[2] / 2) (6 for Swin-T, '
                             '12 for Swin-S/B/L)')
        return layer_id
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HierarchicalLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for Swin-like backbones (``stages.i.blocks.j`` or ``stages.i.j``).

    ``paramwise_cfg``: ``num_layers`` (int, the id of the last stage; see
    :func:`get_layer_id`) and ``decay_rate`` (float).
    """

    def add_params(self, params, module, **kwargs):
        num_layers = self.paramwise_cfg['num_layers']
        decay_rate = self.paramwise_cfg['decay_rate']
        names = [name for name, _ in module.named_parameters()]
        if not any(_BLOCK.match(name) for name in names):
            raise ValueError(
                'HierarchicalLayerDecayOptimizerConstructor needs a backbone with '
                '`stages.<i>.blocks.<j>` or `stages.<i>.<j>` parameters (windowlab Swin, '
                'Swin-VSA, PolySwin, BiFormer); got ' + type(module.backbone).__name__)
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith('.bias')
            layer_id = get_layer_id(name, num_layers)
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
