"""What tools/train.py and tools/test.py share: config set-up, input checks, clear errors.

The config's ``default_scope`` (``mmpretrain``, ``mmdet`` or ``mmseg``) decides the task;
one pair of tools serves all three.
"""
import contextlib
import difflib
import glob
import json
import os
import os.path as osp
import pickle
import re
import shutil
import socket
import sys
import tempfile
import threading
import time

import torch
from mmengine.config import Config

from .engine.finite_loss_hook import last_checkpoint
from .registry import TASK_OF_LIBRARY


class ConfigError(ValueError):
    """A config that cannot work, with what to change."""


def load_config(path, cfg_options=None):
    if not osp.isfile(path):
        raise ConfigError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in TASK_OF_LIBRARY:
        raise ConfigError(f'{path}: default_scope is {scope!r}; windowlab tools run configs whose '
                          f'default_scope is one of {sorted(TASK_OF_LIBRARY)} (inherit a '
                          "configs/_base_/default_runtime_*.py)")
    return cfg


def set_work_dir(cfg, config_path, work_dir=None):
    """``--work-dir`` > ``cfg.work_dir`` > ``./work_dirs/<config name>`` (OpenMMLab convention)."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def use_gloo_without_cuda(cfg):
    """Distributed runs on CPU-only machines: gloo instead of nccl, and DDP without
    ``device_ids`` (mmengine defaults them to the local GPU)."""
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper


def close_distributed():
    """Tear the process group down before exit (gloo threads alive at interpreter shutdown can
    abort the process with 'terminate called without an active exception')."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def enable_amp(cfg):
    if not torch.cuda.is_available():
        raise ConfigError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); drop --amp on CPU')
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise ConfigError(f'--amp only works with OptimWrapper, the config uses {optim_wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def _dataset_paths(dataset):
    """(description, path) pairs a dataset config reads, following wrapper datasets."""
    if not isinstance(dataset, dict):
        return []
    inner = dataset.get('dataset') or dataset.get('datasets')
    if inner is not None:
        return [p for d in (inner if isinstance(inner, list) else [inner]) for p in _dataset_paths(d)]
    root = dataset.get('data_root') or ''
    paths = []
    if root:
        paths.append(('data_root', root))
    ann = dataset.get('ann_file')
    if ann:
        paths.append(('ann_file', osp.join(root, ann)))
    prefix = dataset.get('data_prefix')
    prefixes = prefix.values() if isinstance(prefix, dict) else [prefix]
    for p in prefixes:
        if isinstance(p, str) and p:
            paths.append(('data_prefix', osp.join(root, p)))
    return paths


def check_dataset_paths(cfg, loaders):
    """Fail early, naming the missing path and how to fix it, instead of deep in a worker."""
    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        for what, path in _dataset_paths(dataset):
            if '://' in path or osp.exists(path):
                continue
            hint = ('generate it with `python tools/make_toy_data.py`' if 'toy-' in path else
                    'download the dataset there, or point the config at it with e.g. '
                    f'--cfg-options {loader}.dataset.data_root=/path/to/data')
            raise FileNotFoundError(f'{loader}.dataset.{what} {path!r} does not exist '
                                    f'(cwd: {os.getcwd()}); {hint}')


_UNKNOWN_TYPE = re.compile(r'(\S+) is not in the (\S+) registry')


def explain_unknown_type(error, cfg):
    """Turn mmengine's 'X is not in the registry' KeyError into one that suggests names."""
    match = _UNKNOWN_TYPE.search(str(error))
    if not match:
        return None
    name = match.group(1).strip('`\'"')
    scope = cfg.get('default_scope')
    from importlib import import_module
    registry = import_module(f'{scope}.registry').MODELS
    registry.import_from_location()
    names = list(registry.module_dict) + list(registry.parent.module_dict if registry.parent else {})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f' Did you mean {", ".join(close)}?' if close else ''
    return KeyError(f'unknown type {name!r} in {match.group(2)} (config {cfg.filename}).{hint} '
                    'windowlab backbones are registered on `import windowlab`.')


def build_runner(cfg):
    """``Runner.from_cfg`` (or ``cfg.runner_type``) with clearer errors for unknown types."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    check_model_keys(cfg)
    try:
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except KeyError as e:
        better = explain_unknown_type(e, cfg)
        if better is None:
            raise
        raise better from e
    except TypeError as e:  # a key that check_model_keys could not judge (``**kwargs``)
        better = explain_unexpected_key(e, cfg)
        if better is None:
            raise
        raise better from e


def build_model(cfg):
    """Build ``cfg.model`` in the config's scope (outside a Runner), e.g. for analysis tools."""
    check_model_keys(cfg)
    return build_in_scope(cfg.model, cfg.get('default_scope'))


def build_in_scope(model_cfg, scope):
    """Build a model dict with ``scope``'s registry (``mmpretrain``, ``mmdet`` or ``mmseg``),
    nested parts included, whatever scope is current."""
    from importlib import import_module

    from mmengine.registry import DefaultScope

    if scope not in TASK_OF_LIBRARY:
        raise ConfigError(f'default_scope {scope!r} is not one of {sorted(TASK_OF_LIBRARY)}')
    registry = import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(model_cfg)


def _constructor_arguments(obj):
    """Names ``obj(...)`` accepts, or ``None`` where it cannot tell (``**kwargs``, C code)."""
    import inspect

    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _resolve_type(name, registries):
    """The one object ``name`` means in ``registries``; ``None`` if none or ambiguous."""
    found = set()
    for registry in registries:
        try:
            obj = registry.get(name)
        except Exception:  # a scope prefix the registry does not know, a failed lazy import
            obj = None
        if obj is not None:
            found.add(obj)
    return found.pop() if len(found) == 1 else None


def check_model_keys(cfg):
    """Refuse a key of ``cfg.model`` (nested parts included) that its ``type`` does not take,
    before a Runner prints its environment: raises :class:`ConfigError` naming the config
    file, the key's path and the closest argument names.

    Only parts whose constructor lists every argument (no ``**kwargs``) are checked; those
    are exactly the ones that would stop with ``TypeError: unexpected keyword argument``.
    The layers of mmengine's root registry (norms, activations, convolutions) are not:
    mmcv's ``build_norm_layer`` and friends take keys of their own (``requires_grad``) out of
    those dicts first.
    """
    from importlib import import_module

    from mmengine.registry import MODELS, DefaultScope

    from .registry import LAYERS

    scope = cfg.get('default_scope')
    if scope not in TASK_OF_LIBRARY or 'model' not in cfg:
        return
    models = import_module(f'{scope}.registry').MODELS
    models.import_from_location()
    with DefaultScope.overwrite_default_scope(scope):
        _check_keys(cfg.model, 'model', (models, LAYERS), set(MODELS.module_dict), cfg.filename)


_UNEXPECTED_KEY = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def explain_unexpected_key(error, cfg):
    """Turn ``TypeError: X.__init__() got an unexpected keyword argument 'k'`` raised while
    building ``cfg.model`` into a :class:`ConfigError` like :func:`check_model_keys`'s: the
    config file, the key's path(s) in ``cfg.model`` and the closest argument names of the
    class being built (its own and those of its parents up to ``X``, which ``**kwargs`` pass
    the key on to)."""
    import inspect

    match = _UNEXPECTED_KEY.search(str(error))
    paths = sorted(_paths_of_key(cfg.model, match.group(2), 'model')) if match else []
    if not paths:
        return None
    owner, key = match.groups()
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    instance = tb.tb_frame.f_locals.get('self')  # the object whose constructor was running
    if not isinstance(instance, torch.nn.Module):  # not a model part: a hook, a visualizer...
        return None
    accepted = []
    for cls in type(instance).__mro__:
        try:
            params = inspect.signature(cls.__init__).parameters.values()
        except (TypeError, ValueError):  # C code
            continue
        accepted += [p.name for p in params if p.name not in accepted and p.name != 'self'
                     and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if cls.__name__ == owner:
            break
    close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
    hint = f' Did you mean {", ".join(close)}?' if close else ''
    return ConfigError(f'{cfg.filename}: {" or ".join(paths)}: {type(instance).__name__} '
                       f'takes no argument {key!r} (refused by {owner}.__init__).{hint}')


def _paths_of_key(value, key, path):
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _paths_of_key(item, key, f'{path}[{i}]')
    elif isinstance(value, dict):
        for k, item in value.items():
            if k == key:
                yield f'{path}.{k}'
            yield from _paths_of_key(item, key, f'{path}.{k}')


def _check_keys(value, path, registries, mmcv_layers, filename):
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_keys(item, f'{path}[{i}]', registries, mmcv_layers, filename)
        return
    if not isinstance(value, dict):
        return
    kind = value.get('type')
    obj = None
    if isinstance(kind, str) and kind not in mmcv_layers:
        obj = _resolve_type(kind, registries)
    accepted = _constructor_arguments(obj) if obj is not None else None
    if accepted is not None:
        for key in value:
            if key != 'type' and key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
                hint = f' Did you mean {", ".join(close)}?' if close else ''
                raise ConfigError(
                    f'{filename}: {path}.{key}: {kind} takes no argument {key!r}.{hint} '
                    f'Its arguments: {", ".join(accepted)}.')
    for key, item in value.items():
        _check_keys(item, f'{path}.{key}', registries, mmcv_layers, filename)


def build_dataset(cfg, phase):
    """The dataset of ``cfg.<phase>_dataloader`` (``phase``: train, val or test), built with
    the config's scope (its transforms and dataset types)."""
    from mmengine.registry import DATASETS, DefaultScope, init_default_scope

    loader = cfg.get(f'{phase}_dataloader')
    if not loader:
        raise ConfigError(f'{cfg.filename} has no {phase}_dataloader; pick another phase')
    check_dataset_paths(cfg, [f'{phase}_dataloader'])
    init_default_scope(cfg.default_scope)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return DATASETS.build(loader.dataset)


# --- Runs that are safe to start, and stop loudly ------------------------------------------

class RunError(RuntimeError):
    """A training run that must not start or continue, with what to do instead."""


def check_work_dir_writable(work_dir):
    """Fail at start, not at the first checkpoint, if ``work_dir`` cannot be written."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=work_dir, prefix='.write-test-')
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise RunError(f'work_dir {work_dir!r} is not writable ({e.strerror or e}); logs and '
                       'checkpoints go there. Choose a writable folder with --work-dir.') from e


def existing_checkpoints(work_dir):
    names = sorted(glob.glob(osp.join(glob.escape(work_dir), '*.pth')), key=_step_of)
    return [osp.basename(n) for n in names]


def _step_of(path):
    match = re.search(r'(\d+)\.pth$', path)
    return (int(match.group(1)) if match else -1, path)


def check_new_run_keeps_old_checkpoints(work_dir, resume, overwrite):
    """A new run into a work_dir with checkpoints would overwrite them: refuse unless the
    user continues it (``--resume``) or says so (``--overwrite``)."""
    if resume or overwrite:
        return
    found = existing_checkpoints(work_dir)
    if found or last_checkpoint(work_dir):
        shown = ', '.join(found[-3:]) or 'last_checkpoint'
        raise RunError(f'work_dir {work_dir!r} already holds checkpoints of an earlier run '
                       f'({shown}); a new run would overwrite them. Continue that run with '
                       '--resume, start a new one there anyway with --overwrite, or choose '
                       'another --work-dir.')


def prepare_resume(cfg):
    """Check the checkpoint that ``--resume`` will load and take its seed.

    The seed has to be known before the runner builds the sampler and the dataloader
    workers (mmengine only re-seeds after that, when it loads the checkpoint), or a run
    without a fixed ``randomness.seed`` resumes with another data order.

    Returns:
        str | None: the checkpoint path (None: nothing to resume, a fresh start).
    """
    if not cfg.get('resume'):
        return None
    path = cfg.get('load_from') or last_checkpoint(cfg.work_dir)
    if path is None:
        return None
    meta = read_checkpoint_meta(path, cfg.work_dir)
    if meta.get('seed') is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=meta['seed'])
    return path


def read_checkpoint_meta(path, work_dir=None):
    """``meta`` of a checkpoint, reading only what it needs (memory-mapped); a clear
    :class:`RunError` for a missing, truncated or corrupt file."""
    if '://' in str(path):
        return {}
    if not osp.isfile(path):
        raise RunError(f'cannot resume: checkpoint {path!r} does not exist')
    from .converters.checkpoint import UntrustedCheckpointError, checkpoint_read_error

    try:  # torch's default loader: weights-only unless --trust-checkpoint
        checkpoint = torch.load(path, map_location='cpu', mmap=True)
    except Exception as e:  # truncated zip, not a torch file, an untrusted type ...
        if isinstance(e, pickle.UnpicklingError):
            error = checkpoint_read_error(path, e)
            if isinstance(error, UntrustedCheckpointError):  # a fine file: say how to trust it
                raise error from e
        others = [n for n in existing_checkpoints(work_dir or osp.dirname(path))
                  if n != osp.basename(path)]
        hint = (f' Other checkpoints there: {", ".join(others[-3:])}; resume from one with '
                '--resume PATH.' if others else '')
        raise RunError(f'cannot resume from {path!r}: the file is truncated or corrupt '
                       f'({type(e).__name__}: {str(e).splitlines()[0][:160]}), e.g. the disk '
                       f'filled up or a copy was cut short.{hint}') from e
    return checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}


OPTIMIZER_SLOTS = {'Adam': 2, 'AdamW': 2, 'Adamax': 2, 'NAdam': 2, 'RAdam': 2, 'Lamb': 2,
                   'SGD': 1, 'RMSprop': 1, 'Adagrad': 1}


def checkpoint_size_estimate(model, optimizer_type, resume_from=None):
    """Bytes of the next checkpoint: the model's state plus the optimizer's per-parameter
    state (e.g. two buffers for Adam), or the size of the checkpoint being resumed if larger."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    params = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    estimate = weights + OPTIMIZER_SLOTS.get(optimizer_type, 2) * params
    if resume_from and osp.isfile(resume_from):
        estimate = max(estimate, osp.getsize(resume_from))
    return estimate


def check_free_space(work_dir, needed):
    """A checkpoint is written next to the previous one (atomic replace): ``needed`` bytes
    must be free in ``work_dir``."""
    free = shutil.disk_usage(work_dir).free
    if free < needed * 1.1:
        raise RunError(f'not enough disk space in work_dir {work_dir!r}: {_mib(free)} free, the '
                       f'next checkpoint needs about {_mib(needed)}. Free some space (e.g. old '
                       'checkpoints; default_hooks.checkpoint.max_keep_ckpts keeps fewer) or '
                       'choose another --work-dir.')


def _mib(n):
    return f'{n / 2 ** 20:.1f} MiB'


def is_main_process():
    """Global rank 0 before the process group exists (torchrun, slurm or mpi variables)."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if name in os.environ:
            return int(os.environ[name]) == 0
    return True


class WorkDirLock:
    """``work_dir/.train.lock`` (JSON: pid, host, start time, command) held by the running
    training process; a second run into the same work_dir is refused.

    A lock left by a crashed run is taken over: on the same host when its pid is gone, on
    another host (shared file systems) when its heartbeat (the file's mtime, touched every
    ``HEARTBEAT_S``) is older than ``STALE_S``.
    """

    HEARTBEAT_S = 60
    STALE_S = 600

    def __init__(self, work_dir):
        self.path = osp.join(work_dir, '.train.lock')
        self._stop = threading.Event()
        self._owned = False

    def acquire(self):
        info = dict(pid=os.getpid(), host=socket.gethostname(), started=time.time(),
                    command=' '.join(sys.argv))
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not self._is_stale(holder):
                    raise RunError(self._busy_message(holder)) from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)  # a crashed run's lock
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(info, f)
            self._owned = True
            threading.Thread(target=self._beat, daemon=True).start()
            return self
        raise RunError(f'could not take the work_dir lock {self.path!r}; another run keeps '
                       'taking it')

    def release(self):
        self._stop.set()
        if self._owned:
            self._owned = False
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def _holder(self):
        try:
            with open(self.path) as f:
                holder = json.load(f)
            holder['mtime'] = os.path.getmtime(self.path)
            return holder
        except FileNotFoundError:
            return None
        except (ValueError, OSError):  # being written right now, or garbage
            mtime = os.path.getmtime(self.path) if osp.exists(self.path) else 0
            return dict(pid=None, host=None, mtime=mtime)

    def _is_stale(self, holder):
        if holder.get('host') == socket.gethostname() and holder.get('pid'):
            return not _pid_alive(holder['pid'])
        return time.time() - holder['mtime'] > self.STALE_S

    def _busy_message(self, holder):
        started = holder.get('started')
        when = time.strftime(' since %Y-%m-%d %H:%M:%S', time.localtime(started)) if started else ''
        return (f'work_dir {osp.dirname(self.path)!r} is in use by another training run (pid '
                f'{holder.get("pid")} on {holder.get("host")}{when}: {holder.get("command", "?")}). '
                'Two runs would overwrite each other\'s checkpoints: wait for it to finish or '
                f'choose another --work-dir. If that run is gone, delete {self.path}.')

    def _beat(self):
        while not self._stop.wait(self.HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
