"""Reading checkpoint files and loading them with errors that say what does not fit."""
import os

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

# Where released checkpoints keep their weights, in order of preference.
STATE_DICT_KEYS = ('state_dict', 'model', 'module')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not fit the model."""


def load_checkpoint_file(path):
    """Load a checkpoint (local path or URL) on the CPU, with a clear error if unreadable."""
    if '://' not in str(path) and not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; check the path in init_cfg '
                                'or on the command line')
    try:
        return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    except Exception as e:  # truncated file, not a torch file, ...
        raise CheckpointMismatchError(
            f'could not read checkpoint {path!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); the file is corrupt, '
            'truncated or not a PyTorch checkpoint -- download or convert it again') from e


def strip_prefix(state_dict, prefix, keep_others=False, if_present=False):
    """``state_dict`` with ``prefix`` removed from the keys that start with it (a new dict).

    Args:
        prefix (str): e.g. ``'backbone.'`` or ``'module.'``.
        keep_others (bool): keep the keys without ``prefix`` as they are (default: drop them).
        if_present (bool): if no key starts with ``prefix``, return every key unchanged (e.g.
            the ``backbone.`` part of a whole-model checkpoint, or a bare backbone one).
    """
    if if_present and not any(k.startswith(prefix) for k in state_dict):
        return dict(state_dict)
    out = {}
    for key, value in state_dict.items():
        if key.startswith(prefix):
            out[key[len(prefix):]] = value
        elif keep_others:
            out[key] = value
    return out


def unwrap_state_dict(checkpoint, keys=STATE_DICT_KEYS, prefix=None):
    """The tensor dict inside a checkpoint; with ``prefix``, only its keys, prefix removed.

    Args:
        keys (tuple[str]): wrapper keys to look for, in order of preference (e.g.
            ``('state_dict_ema', 'state_dict', 'model')``); a checkpoint with none of them is
            taken as the state dict itself.
    """
    state_dict = checkpoint
    for key in keys:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            state_dict = checkpoint[key]
            break
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = strip_prefix(state_dict, prefix)
        if not state_dict:
            raise CheckpointMismatchError(f'no key of the checkpoint starts with {prefix!r}')
    return state_dict


def _describe(keys, limit=12):
    keys = sorted(keys)
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_state_dict_strict(module, state_dict, optional=(), source='checkpoint'):
    """Load ``state_dict`` into ``module``; raise listing every missing/unexpected/mis-shaped key.

    Args:
        optional (tuple[str]): key prefixes that may be missing (logged, not an error).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
              for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    required_missing = [k for k in missing if not k.startswith(tuple(optional))]
    if required_missing or unexpected or shapes:
        lines = [f'{source} does not fit {type(module).__name__}:']
        if required_missing:
            lines.append(f'  missing keys ({len(required_missing)}): {_describe(required_missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {_describe(unexpected)}')
        if shapes:
            lines.append(f'  shape mismatches ({len(shapes)}): {_describe(shapes, 6)}')
        lines.append('  Is it a checkpoint of this architecture (arch/depths/dims) and layout? '
                     'Convert official files with tools/model_converters/.')
        raise CheckpointMismatchError('\n'.join(lines))
    module.load_state_dict(state_dict, strict=False)
    if missing:
        print_log(f'{source}: newly initialised (not in the checkpoint): {_describe(missing)}',
                  logger='current')


def load_pretrained(module, path, convert, prefix=None, optional=(), keys=STATE_DICT_KEYS):
    """``init_cfg=dict(type='Pretrained')`` for windowlab backbones: read, convert, load.

    ``convert`` maps the file's state dict (any supported layout) to ``module``'s keys;
    ``keys`` and ``prefix`` select that state dict, as in :func:`unwrap_state_dict`.
    """
    state_dict = unwrap_state_dict(load_checkpoint_file(path), keys=keys, prefix=prefix)
    state_dict = convert(state_dict)
    load_state_dict_strict(module, state_dict, optional=optional, source=f'checkpoint {path!r}')
    print_log(f'loaded pretrained weights from {path}', logger='current')


def init_from_pretrained_cfg(module, optional=()):
    """The ``init_weights()`` step of a windowlab backbone for
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``: loads the file through
    ``module.convert_pretrained`` (any supported layout) and returns True; returns False for
    any other ``init_cfg``, so that the caller initialises from scratch instead."""
    cfg = module.init_cfg
    if cfg is None or cfg.get('type') != 'Pretrained':
        return False
    load_pretrained(module, cfg['checkpoint'], module.convert_pretrained,
                    prefix=cfg.get('prefix'), optional=optional)
    return True
