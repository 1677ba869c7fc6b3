"""Official VWFormer checkpoints (yan-hao-tian/VW, ``VWHead``) -> windowlab ``VWHead`` keys.

Official -> windowlab names inside the decode head::

    linear_c2/c3/c4.proj.*       -> level_projs.0/1/2.*
    linear_fuse.*                -> fuse.*
    ds.{j}.*                     -> attn.{j}.pre_scale.*      (ratio 2, 4, 8 for j = 0, 1, 2)
    attn.{j}.theta.conv.*        -> attn.{j}.query.*
    attn.{j}.phi.conv.*          -> attn.{j}.key.*
    attn.{j}.g.conv.*            -> attn.{j}.value.*
    attn.{j}.conv_out.*          -> attn.{j}.out_proj.*
    cat.*                        -> bottleneck.*
    linear_c1.proj.*             -> low_level_proj.*
    short_path.*, image_pool.1.*, low_level_fuse.*, conv_seg.*   unchanged

All tensors keep their shapes. The keys do not depend on ``nheads`` or ``short_cut``.
"""
from windowlab.converters.checkpoint import rename_first_match

DECODE_HEAD_PREFIX = 'decode_head.'

_RENAMES = (
    (r'^linear_c([234])\.proj\.', lambda m: f'level_projs.{int(m.group(1)) - 2}.'),
    (r'^linear_fuse\.', 'fuse.'),
    (r'^ds\.(\d)\.', r'attn.\1.pre_scale.'),
    (r'^attn\.(\d)\.theta\.conv\.', r'attn.\1.query.'),
    (r'^attn\.(\d)\.phi\.conv\.', r'attn.\1.key.'),
    (r'^attn\.(\d)\.g\.conv\.', r'attn.\1.value.'),
    (r'^attn\.(\d)\.conv_out\.', r'attn.\1.out_proj.'),
    (r'^cat\.', 'bottleneck.'),
    (r'^linear_c1\.proj\.', 'low_level_proj.'),
    (r'^(short_path|image_pool\.1|low_level_fuse|conv_seg)\.', r'\1.'),
)


def convert_vwhead_key(key):
    """Rename one official ``VWHead`` key (without ``decode_head.``) to windowlab's."""
    new = rename_first_match(key, _RENAMES)
    if new is not None:
        return new
    raise KeyError(f'unknown official VWHead key {key!r}; is this a VWHead checkpoint (not '
                   'VWCityHead or another head)?')


def convert_vwformer(state_dict, prefix=DECODE_HEAD_PREFIX):
    """Convert the decode-head part of an official VWFormer state dict.

    Args:
        state_dict (dict): tensors taken out of the checkpoint's ``'state_dict'``.
        prefix (str): prefix of the head keys (``'decode_head.'`` in segmentor
            checkpoints; ``''`` for a bare head state dict).

    Returns:
        dict: the same tensors; head keys renamed (prefix kept), every other key (e.g.
        ``backbone.*``) unchanged.
    """
    if prefix and not any(k.startswith(prefix) for k in state_dict):
        raise KeyError(f'no key starts with {prefix!r}: not a VWFormer segmentor checkpoint '
                       "(pass prefix='' for a bare head state dict)")
    out = {}
    for key, value in state_dict.items():
        if prefix and not key.startswith(prefix):
            out[key] = value
        else:
            out[prefix + convert_vwhead_key(key[len(prefix):])] = value
    return out
