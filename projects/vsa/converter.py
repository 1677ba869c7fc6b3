"""ViTAEv2-VSA: official checkpoints (ViTAE-Transformer/ViTAE-VSA) -> windowlab.

The official classification and detection codes share one state-dict layout (the detection
backbone loads the classification release file), so one converter serves both. The output
is the mmpretrain ``ImageClassifier`` layout of windowlab's ``ViTAEv2VSA``:
``backbone.stages.{i}.*`` and ``head.fc.*``; detectors/segmentors read its ``backbone.*``.

Key map (official -> windowlab, inside ``backbone.stages.{i}``):

* ``layers.{i}.RC.PRM.convs.{j}.0`` -> ``reduction.prm.convs.{j}``
* ``layers.{i}.RC.PCM`` / ``NC.{j}.PCM`` -> ``reduction.pcm`` / ``normal.{j}.pcm``
* ``...pos`` (CPE) -> ``...cpe``
* ``...attn.relative_position_bias_table`` -> ``...attn.rel_pos.table``
  (``relative_position_index`` is recomputed, so dropped)
* ``...attn.sampling_{offsets,scales}.2`` -> ``...attn.sampling_{offsets,scales}``
* ``...attn.qkv`` / ``...attn.proj`` 1x1 convs ``[O, I, 1, 1]`` -> linear ``[O, I]``
* ``head`` -> ``head.fc``
"""
import re

from windowlab.converters.checkpoint import strip_prefix, unwrap_state_dict

__all__ = ['convert_vitaev2_vsa', 'convert_vitaev2_vsa_backbone', 'is_official_vitaev2_vsa',
           'select_state_dict', 'state_dict_keys']

_RULES = [
    (re.compile(r'^layers\.(\d+)\.RC\.'), r'stages.\1.reduction.'),
    (re.compile(r'^layers\.(\d+)\.NC\.(\d+)\.'), r'stages.\1.normal.\2.'),
    (re.compile(r'\.PRM\.convs\.(\d+)\.0\.'), r'.prm.convs.\1.'),
    (re.compile(r'\.PCM\.'), '.pcm.'),
    (re.compile(r'\.pos\.'), '.cpe.'),
    (re.compile(r'\.attn\.relative_position_bias_table$'), '.attn.rel_pos.table'),
    (re.compile(r'\.attn\.sampling_(offsets|scales)\.2\.'), r'.attn.sampling_\1.'),
]


def state_dict_keys(use_ema=True):
    """Where a ViTAEv2-VSA file keeps its weights, in order of preference: ``state_dict_ema``
    first (default) or ``state_dict`` first, then ``model``."""
    order = ('state_dict_ema', 'state_dict') if use_ema else ('state_dict', 'state_dict_ema')
    return order + ('model',)


def select_state_dict(checkpoint, use_ema=True):
    """The weights of an official release file: ``state_dict_ema`` (default) or ``state_dict``.

    The detection code and ``validate.py`` read the EMA weights; both entries hold the
    same key set. A bare state dict is returned as is.
    """
    return unwrap_state_dict(checkpoint, keys=state_dict_keys(use_ema))


def is_official_vitaev2_vsa(state_dict):
    """Whether ``state_dict`` is in the official ViTAEv2-VSA layout."""
    return any(re.match(r'^(module\.)?layers\.\d+\.RC\.', k) for k in state_dict)


def convert_vitaev2_vsa(state_dict):
    """Official ViTAEv2-VSA state dict -> windowlab classifier layout (see module docstring).

    Raises:
        KeyError: on a key this converter does not know (not a ViTAEv2-VSA checkpoint with
            VSA in every cell).
    """
    if state_dict and all(k.startswith('module.') for k in state_dict):  # DDP-wrapped file
        state_dict = strip_prefix(state_dict, 'module.')
    out = {}
    for key, value in state_dict.items():
        if key.endswith('relative_position_index'):
            continue
        if key.startswith('head.'):
            out['head.fc.' + key[len('head.'):]] = value
            continue
        new = key
        for pattern, repl in _RULES:
            new = pattern.sub(repl, new)
        if not new.startswith('stages.'):
            raise KeyError(f'unexpected key {key!r}: not a ViTAEv2-VSA checkpoint')
        if re.search(r'\.attn\.(qkv|proj)\.weight$', new) and value.dim() == 4:
            value = value.flatten(1)
        out['backbone.' + new] = value
    return out


def convert_vitaev2_vsa_backbone(state_dict):
    """Official backbone keys (``layers.*``, e.g. the ``backbone.`` part of an official
    detector) -> windowlab ``ViTAEv2VSA`` keys (without ``backbone.``)."""
    return strip_prefix(convert_vitaev2_vsa(state_dict), 'backbone.')
