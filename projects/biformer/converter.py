"""BiFormer checkpoints (rayleizhu/BiFormer) -> windowlab ``BiFormer`` keys.

Supported layouts (detected from the keys):

* official classification (``models/biformer.py``, released as ``{'model': ...}``):
  ``downsample_layers.*``, ``stages.i.j.*``, final BatchNorm ``norm.*``, classifier ``head.*``;
* official detection / segmentation (``BiFormer_mm``; ``backbone.`` keys in mmdet/mmseg
  checkpoints): the same without ``norm``/``head``, plus ``extra_norms.i``;
* windowlab itself (``stem.conv1.*``; returned unchanged: it always loads as itself).

Renames: ``downsample_layers.0.{0,1,3,4}`` -> ``stem.{conv1,norm1,conv2,norm2}``,
``downsample_layers.i.{0,1}`` -> ``downsamples.{i-1}.{conv,norm}``, ``pos_embed`` -> ``cpe``,
BRA ``attn.qkv.qkv`` -> ``attn.qkv``, ``attn.wo`` -> ``attn.proj``, ``attn.lepe`` ->
``attn.lce``, ``mlp.0``/``mlp.3`` -> ``mlp.fc1``/``mlp.fc2``, ``extra_norms.i`` -> ``norm{i}``.
"""
from windowlab.converters.checkpoint import rename_first_match, strip_prefix

# (pattern, replacement) applied to official backbone keys; the first match wins.
_RULES = [
    (r'^downsample_layers\.0\.0\.', 'stem.conv1.'),
    (r'^downsample_layers\.0\.1\.', 'stem.norm1.'),
    (r'^downsample_layers\.0\.3\.', 'stem.conv2.'),
    (r'^downsample_layers\.0\.4\.', 'stem.norm2.'),
    (r'^downsample_layers\.([123])\.0\.', lambda m: f'downsamples.{int(m[1]) - 1}.conv.'),
    (r'^downsample_layers\.([123])\.1\.', lambda m: f'downsamples.{int(m[1]) - 1}.norm.'),
    (r'^(stages\.\d+\.\d+)\.pos_embed\.', r'\1.cpe.'),
    (r'^(stages\.\d+\.\d+)\.attn\.qkv\.qkv\.', r'\1.attn.qkv.'),
    (r'^(stages\.\d+\.\d+)\.attn\.wo\.', r'\1.attn.proj.'),
    (r'^(stages\.\d+\.\d+)\.attn\.lepe\.', r'\1.attn.lce.'),
    (r'^(stages\.\d+\.\d+)\.attn\.(qkv|proj)\.', r'\1.attn.\2.'),
    (r'^(stages\.\d+\.\d+)\.mlp\.0\.', r'\1.mlp.fc1.'),
    (r'^(stages\.\d+\.\d+)\.mlp\.3\.', r'\1.mlp.fc2.'),
    (r'^(stages\.\d+\.\d+)\.(norm[12])\.', r'\1.\2.'),
    (r'^extra_norms\.(\d)\.', r'norm\1.'),
]


def _rename(key):
    new = rename_first_match(key, _RULES)
    if new is not None:
        return new
    raise KeyError(f'unexpected key {key!r} in an official BiFormer checkpoint (only the legacy '
                   'BRA models with kv_downsample_mode identity and no layer scale are supported)')


def convert_biformer(state_dict, final_norm=None):
    """Convert any supported BiFormer state dict to windowlab backbone keys.

    Args:
        state_dict (dict): the tensors (already taken out of ``'model'``/``'state_dict'``).
        final_norm (str, optional): where an official classifier's final BatchNorm ``norm``
            goes (``'norm3'`` for the classification backbone); ``None`` drops it, as the
            official dense wrapper does. The classifier ``head`` is always dropped.
    """
    sd = strip_prefix(state_dict, 'backbone.', if_present=True)
    if 'stem.conv1.weight' in sd:  # windowlab layout
        return sd
    if 'downsample_layers.0.0.weight' not in sd:
        raise KeyError('not a BiFormer checkpoint: expected official keys (downsample_layers.*, '
                       f'stages.*) or windowlab keys (stem.*); got {sorted(sd)[:5]} ...')
    out = {}
    for key, value in sd.items():
        if key.startswith('head.'):
            continue
        if key.startswith('norm.'):
            if final_norm is not None:
                out[f'{final_norm}.{key[len("norm."):]}'] = value
            continue
        out[_rename(key)] = value
    return out


def convert_biformer_classifier(state_dict):
    """Official classification state dict -> mmpretrain ``ImageClassifier`` keys
    (``backbone.*`` with the final BatchNorm as ``backbone.norm3``, ``head.fc.*``)."""
    if 'head.weight' not in state_dict:
        raise KeyError('convert_biformer_classifier needs a classification checkpoint with '
                       "'head.weight'; for detection/segmentation files use convert_biformer")
    out = {f'backbone.{k}': v for k, v in convert_biformer(state_dict, 'norm3').items()}
    out['head.fc.weight'] = state_dict['head.weight']
    out['head.fc.bias'] = state_dict['head.bias']
    return out
