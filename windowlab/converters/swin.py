"""Swin checkpoints of every common layout -> ``WLSwinTransformer`` keys.

Supported layouts (detected from the keys):

* official classification (microsoft/Swin-Transformer, ``{'model': ...}``) and official
  detection (Swin-Transformer-Object-Detection, ``backbone.`` keys): ``layers.i`` blocks;
* mmdet / mmseg / mmpretrain ``SwinTransformer``: ``stages.i`` with ``attn.w_msa`` and
  ``ffn.layers``; their patch merging uses ``nn.Unfold``, whose channel order is undone here;
* windowlab itself (returned unchanged: a windowlab checkpoint always loads as itself).

Detector/segmentor/classifier checkpoints are reduced to their ``backbone.`` part first.
"""
import re

import torch

from .checkpoint import strip_prefix

DROPPED = ('relative_position_index', 'attn_mask')


def unfold_to_swin_order(channels):
    """Permutation ``p`` with ``swin_weight = unfold_weight[..., p]`` for 2x2 patch merging.

    ``nn.Unfold`` puts channel ``c`` of neighbour ``(i, j)`` at ``4c + 2i + j``; Swin
    concatenates the neighbours ``(0,0), (1,0), (0,1), (1,1)``, i.e. ``(i + 2j) C + c``.
    """
    c = channels // 4
    perm = torch.empty(channels, dtype=torch.long)
    for i in range(2):
        for j in range(2):
            for ch in range(c):
                perm[(i + 2 * j) * c + ch] = 4 * ch + 2 * i + j
    return perm


def convert_swin(state_dict, final_norm=None):
    """Convert any supported Swin state dict to windowlab's backbone keys.

    Args:
        state_dict (dict): the tensors (already taken out of ``'model'``/``'state_dict'``).
        final_norm (str, optional): where an *official* classifier's final ``norm`` goes
            (e.g. ``'norm3'`` for classification fine-tuning); ``None`` drops it, as the
            official detection code and mmdet/mmseg do. The classifier ``head`` is always
            dropped. Never guessed from the keys: windowlab and OpenMMLab files, which name
            their output norms ``norm{i}``, are kept as they are.
    """
    sd = strip_prefix(state_dict, 'backbone.', if_present=True)
    if any('attn.rel_pos.table' in k for k in sd):
        return sd  # windowlab: always loads as itself
    if any(k.startswith('layers.') for k in sd):
        return _convert_official(sd, final_norm)
    if any('attn.w_msa' in k for k in sd):
        return _convert_openmmlab(sd)
    raise KeyError('not a Swin checkpoint: expected official keys (layers.*), OpenMMLab keys '
                   '(stages.*.attn.w_msa.*) or windowlab keys (stages.*.attn.rel_pos.table); got '
                   f'{sorted(sd)[:5]} ...')


def _convert_official(sd, final_norm):
    out = {}
    for key, value in sd.items():
        if key.endswith(DROPPED) or key.startswith('head.'):
            continue
        if key.startswith('norm.'):
            if final_norm:
                out[final_norm + key[len('norm'):]] = value
            continue
        key = re.sub(r'^layers\.', 'stages.', key)
        key = key.replace('attn.relative_position_bias_table', 'attn.rel_pos.table')
        out[key] = value
    return out


_OPENMMLAB_RENAMES = (
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('attn.w_msa.relative_position_bias_table', 'attn.rel_pos.table'),
    ('attn.w_msa.', 'attn.'),
    ('ffn.layers.0.0.', 'mlp.fc1.'),
    ('ffn.layers.1.', 'mlp.fc2.'),
)


def _convert_openmmlab(sd):
    out = {}
    for key, value in sd.items():
        if key.endswith(DROPPED) or key.startswith('head.'):
            continue
        for old, new in _OPENMMLAB_RENAMES:
            key = key.replace(old, new)
        if '.downsample.' in key:
            value = value[..., unfold_to_swin_order(value.shape[-1])]
        out[key] = value
    return out


def convert_swin_classifier(state_dict):
    """Official classification checkpoint -> mmpretrain ``ImageClassifier`` keys
    (``backbone.*`` with the final norm as ``norm3``, ``head.fc.*``)."""
    num_stages = 1 + max(int(k.split('.')[1]) for k in state_dict if k.startswith('layers.'))
    out = {f'backbone.{k}': v for k, v in
           convert_swin(state_dict, final_norm=f'norm{num_stages - 1}').items()}
    out.update({f'head.fc.{k[len("head."):]}': v for k, v in state_dict.items() if k.startswith('head.')})
    return out
