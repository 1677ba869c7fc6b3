"""Reading, writing and loading checkpoint files, with errors that say what does not fit."""
import argparse
import io
import os
import os.path as osp
import pickle
import re

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

# Where released checkpoints keep their weights, in order of preference.
STATE_DICT_KEYS = ('state_dict', 'model', 'module')


# torch's own switch: ``torch.load`` without an explicit ``weights_only`` unpickles anything.
# The tools' ``--trust-checkpoint`` flag sets it (see :func:`trust_checkpoints`).
TRUST_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not fit the model."""


class UntrustedCheckpointError(CheckpointMismatchError):
    """torch's weights-only loader refused a (possibly valid) checkpoint; ``refused`` names
    the Python type or function it would not unpickle."""

    def __init__(self, message, refused=None):
        super().__init__(message)
        self.refused = refused


def trust_checkpoints():
    """Let every later checkpoint load unpickle arbitrary objects (``--trust-checkpoint``):
    only for files from a source you trust, since unpickling can run code."""
    os.environ[TRUST_ENV] = '1'


class _TrustAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        trust_checkpoints()
        setattr(namespace, self.dest, True)


def add_trust_argument(parser):
    """``--trust-checkpoint`` for a command-line tool: calls :func:`trust_checkpoints`."""
    parser.add_argument(
        '--trust-checkpoint', action=_TrustAction,
        help='load checkpoints that hold Python objects besides tensors (e.g. an '
        'argparse.Namespace), which torch\'s safe weights-only loader refuses; only for files '
        f'from a source you trust (unpickling can run code). Same as {TRUST_ENV}=1')


def _refused_type(error):
    """The global torch's weights-only unpickler refused (e.g. ``'argparse.Namespace'``)."""
    match = re.search(r'Unsupported global: GLOBAL (\S+)', str(error))
    if match:
        return match.group(1)
    match = re.search(r'Unsupported class:? (\S+)', str(error))
    return match.group(1) if match else None


def load_checkpoint_file(path):
    """Load a checkpoint (local path or URL) on the CPU, with a clear error if unreadable.

    Raises:
        FileNotFoundError: no such local file.
        UntrustedCheckpointError: the file is readable but holds Python objects (e.g. an
            ``argparse.Namespace`` saved by a training script) that torch's weights-only
            loader refuses; the message names them and the ways to load it.
        CheckpointMismatchError: the file is not a (complete) PyTorch checkpoint.
    """
    if '://' not in str(path) and not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; check the path in init_cfg '
                                'or on the command line')
    try:
        return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    except pickle.UnpicklingError as e:
        raise checkpoint_read_error(path, e) from e
    except Exception as e:  # truncated file, not a torch file, ...
        raise _unreadable(path, e) from e


def checkpoint_read_error(path, error):
    """The error to raise for ``error`` (from ``torch.load``) on checkpoint ``path``:
    :class:`UntrustedCheckpointError` naming the type the weights-only loader refused, or
    :class:`CheckpointMismatchError` for a corrupt file; both keep torch's full reason."""
    refused = _refused_type(error) if isinstance(error, pickle.UnpicklingError) else None
    if refused is None:  # garbage bytes also fail as "Unsupported operand"
        return _unreadable(path, error)
    return UntrustedCheckpointError(
        f'torch refused to load checkpoint {path!r} with its safe weights-only loader: it '
        f'holds a {refused}, which is not a tensor type. The file itself is fine. If you trust '
        'its source (unpickling can run code), load it with --trust-checkpoint (tools/train.py, '
        f'tools/test.py, tools/model_converters/*) or {TRUST_ENV}=1 in the environment; or, on '
        'a machine where you trust it, save only its weights '
        "(torch.save({'state_dict': ckpt['state_dict']}, path)). Full reason from torch:\n"
        f'{error}', refused=refused)


def _unreadable(path, error):
    return CheckpointMismatchError(
        f'could not read checkpoint {path!r}: the file is corrupt, truncated or not a PyTorch '
        f'checkpoint -- download or convert it again. Reason: {type(error).__name__}: {error}')


def save_checkpoint_file(checkpoint, dst, src=None):
    """``torch.save`` to ``dst`` atomically (readers see the old file or the whole new one);
    refuses to overwrite ``src``, the file it was converted from."""
    from ..compat import atomic_write

    if src is not None and '://' not in str(src) and os.path.exists(dst) and \
            os.path.samefile(src, dst):
        raise ValueError(f'refusing to overwrite the input checkpoint {src!r} with its '
                         'conversion; choose another output path')
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(buffer.getvalue(), dst)


def save_converted(state_dict, dst, src, converter, **meta):
    """Write a converter tool's output ``{'state_dict': ..., 'meta': ...}`` to ``dst``
    (atomically, never over ``src``) and print what was written. ``meta`` also gets
    ``source`` (the file name of ``src``) and ``converter``; returns it."""
    meta = dict(source=osp.basename(str(src)), converter=converter, **meta)
    save_checkpoint_file({'state_dict': state_dict, 'meta': meta}, dst, src=src)
    layout = f" ({meta['layout']} layout)" if 'layout' in meta else ''
    print(f'saved {len(state_dict)} tensors{layout} to {dst}')
    return meta


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


def rename_first_match(key, rules):
    """``key`` renamed by the first of ``rules`` (``(regex, replacement)`` pairs) that matches
    it, or ``None`` when none does (the caller says what kind of file it expected)."""
    for pattern, replacement in rules:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    return None


def convert_backbone_part(state_dict, convert):
    """A whole-model state dict with its ``backbone.*`` keys converted by ``convert`` (a
    function on the backbone's own keys, returning windowlab backbone keys); necks and heads,
    whose mmdet 2 / mmseg 0.x names are those of mmdet 3 / mmseg 1, are kept as they are."""
    backbone = strip_prefix(state_dict, 'backbone.')
    if not backbone:
        raise CheckpointMismatchError('no backbone.* keys: not a detector/segmentor checkpoint')
    out = {f'backbone.{k}': v for k, v in convert(backbone).items()}
    out.update({k: v for k, v in state_dict.items() if not k.startswith('backbone.')})
    return out


def convert_model_state(state_dict, convert, convert_classifier=None):
    """A checkpoint's state dict -> windowlab whole-model keys, and its layout:

    * ``'ImageClassifier'``: ``convert_classifier(state_dict)``, when given (the caller tells
      an official classifier it wants converted whole);
    * ``'detector/segmentor'``: a file with ``backbone.*`` keys, converted by ``convert``
      (necks and heads kept, see :func:`convert_backbone_part`);
    * ``'backbone'``: bare backbone keys, converted by ``convert`` and put under ``backbone.``.
    """
    if convert_classifier is not None:
        return convert_classifier(state_dict), 'ImageClassifier'
    if any(k.startswith('backbone.') for k in state_dict):
        return convert_backbone_part(state_dict, convert), 'detector/segmentor'
    return {f'backbone.{k}': v for k, v in convert(state_dict).items()}, 'backbone'


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


def adapt_to_model(module, state_dict):
    """A copy of ``state_dict`` in which every submodule that defines
    ``adapt_loaded_state(state_dict, prefix)`` has adapted its own entries (e.g. a relative
    position bias table trained with another window, resized as the official code does).

    The same method runs inside ``module.load_state_dict`` and mmengine's ``load_from``
    (the submodules call it from ``_load_from_state_dict``); this pass lets the strict
    loader check the shapes after it.
    """
    state_dict = dict(state_dict)
    for name, submodule in module.named_modules():
        adapt = getattr(submodule, 'adapt_loaded_state', None)
        if adapt is not None:
            adapt(state_dict, f'{name}.' if name else '')
    return state_dict


def load_state_dict_strict(module, state_dict, optional=(), source='checkpoint'):
    """Load ``state_dict`` into ``module``; raise listing every missing/unexpected/mis-shaped key.

    Entries a submodule knows how to adapt (see :func:`adapt_to_model`) are adapted first.

    Args:
        optional (tuple[str]): key prefixes that may be missing (logged, not an error).
    """
    state_dict = adapt_to_model(module, state_dict)
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


def pretrained_final_norm(module):
    """``init_cfg['final_norm']`` of ``module``: where an official classifier's final norm
    goes (``'norm3'``), or None (dropped, the default); checked against the module's norms."""
    name = (split_init_cfg(module.init_cfg)[0] or {}).get('final_norm')
    if name is not None and not isinstance(getattr(module, str(name), None), torch.nn.Module):
        norms = sorted(n for n, _ in module.named_children() if re.fullmatch(r'norm\d+', n))
        raise ValueError(f"init_cfg final_norm={name!r} is not an output norm of "
                         f'{type(module).__name__} (it has {norms}: set out_indices, or drop '
                         'final_norm to start the output norms fresh)')
    return name


def drop_unfit_output_norms(module, state_dict, source='checkpoint'):
    """Drop the file's output norms ``norm{i}.*`` that ``module`` has no place for (not among
    its ``out_indices``, or another kind of norm, e.g. a classifier's BatchNorm for a dense
    LayerNorm), logging what was dropped; every other key is kept for the strict load."""
    own = module.state_dict()
    groups = {}
    for key in state_dict:
        match = re.match(r'(norm\d+)\.', key)
        if match:
            groups.setdefault(match.group(1), set()).add(key)
    out = dict(state_dict)
    for name, keys in sorted(groups.items()):
        own_keys = {k for k in own if k.startswith(name + '.')}
        if own_keys and _is_batch_norm(keys) == _is_batch_norm(own_keys):
            continue  # the same kind of norm: loaded (the strict load checks its keys)
        reason = 'not an output of this model' if not own_keys else 'another kind of norm'
        print_log(f'{source}: dropped {name} ({reason}; out_indices {module.out_indices})',
                  logger='current')
        for key in keys:
            del out[key]
    return out


def _is_batch_norm(keys):
    return any(k.endswith('.running_mean') for k in keys)


def split_init_cfg(init_cfg):
    """``init_cfg`` (None, a dict or a list of dicts, as mmengine allows) ->
    ``(pretrained, others)``: its ``type='Pretrained'`` entry (or None) and the other entries."""
    cfgs = [] if init_cfg is None else [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    if len(pretrained) > 1:
        raise ValueError(f'init_cfg has {len(pretrained)} Pretrained entries; keep one')
    others = [c for c in cfgs if c.get('type') != 'Pretrained']
    return (pretrained[0] if pretrained else None), others


def init_from_pretrained_cfg(module, optional=(), keys=STATE_DICT_KEYS):
    """The ``init_weights()`` step of a windowlab backbone for an ``init_cfg`` with a
    ``dict(type='Pretrained', checkpoint=..., prefix=...)`` entry (alone or in a list): applies
    the list's other entries (mmengine initialisers), then loads the file through
    ``module.convert_pretrained`` (any supported layout), last, as mmengine does, and returns
    True; returns False without a Pretrained entry, so that the caller initialises from
    scratch instead (and lets ``BaseModule.init_weights`` apply the other entries).

    Args:
        optional (Sequence[str]): key prefixes the file may lack (see
            :func:`load_state_dict_strict`).
        keys (tuple[str] | callable): the checkpoint's wrapper keys to look for, in order
            of preference (see :func:`unwrap_state_dict`), or ``keys(pretrained_cfg)``
            returning them (for a backbone whose Pretrained entry chooses them, e.g. EMA).
    """
    cfg, others = split_init_cfg(module.init_cfg)
    if cfg is None:
        return False
    if others:
        from mmengine.model import initialize
        initialize(module, others)
    load_pretrained(module, cfg['checkpoint'], module.convert_pretrained,
                    prefix=cfg.get('prefix'), optional=optional,
                    keys=keys(cfg) if callable(keys) else keys)
    return True
