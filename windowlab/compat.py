"""Fixes that let the 2024 OpenMMLab stack run on current torch and numpy.

Each fix is applied once, on ``import windowlab``, and has a test that fails without it
(tests/test_compat.py). Nothing here edits installed packages.

* ``torch.load`` defaults to ``weights_only=True`` since torch 2.6. mmengine's checkpoints
  keep their training state in a few non-tensor objects (the message hub's
  ``HistoryBuffer`` with numpy arrays and scalars, and its statistics methods, pickled as
  ``getattr(HistoryBuffer, 'mean')``), so ``--resume`` fails with "Weights only load
  failed". We allow-list exactly those types, and a ``getattr`` that only hands out
  HistoryBuffer's own methods, instead of turning the safe loader off.
* mmengine writes checkpoints in place (``open(path, 'wb')``): a run killed while saving
  leaves a truncated ``iter_N.pth`` that ``--resume`` then fails on. Local writes through
  mmengine's file backend become atomic: a temporary file in the same folder, flushed to
  disk, then renamed over the target. ``last_checkpoint`` is written after the checkpoint,
  so it always names a complete file. A full disk gives a :class:`DiskFullError` that
  says how much space the file needs.
* mmengine's ``torchrun`` launcher calls ``torch.cuda.set_device`` unconditionally, so
  multi-process training on CPU-only machines (gloo) dies with "Found no NVIDIA driver".
  With the gloo backend and no CUDA, the process group is initialised without it
  (tools/train.py selects gloo when there is no GPU).
"""
import errno
import os
import tempfile

import numpy as np
import torch


def history_buffer_method(owner, name):
    """Stands in for ``getattr`` while unpickling: only ``HistoryBuffer``'s own methods."""
    from mmengine.logging import HistoryBuffer

    if owner is HistoryBuffer and not name.startswith('_') and callable(vars(HistoryBuffer).get(name)):
        return getattr(HistoryBuffer, name)
    raise TypeError(f'checkpoint asks for getattr({owner!r}, {name!r}); only HistoryBuffer '
                    'statistics are allowed by the weights-only loader')


def mmengine_checkpoint_globals():
    """The non-tensor types an mmengine checkpoint contains (message hub, numpy logs)."""
    from mmengine.logging import HistoryBuffer

    numpy_core = np._core if hasattr(np, '_core') else np.core
    dtype_classes = {type(np.dtype(t)) for t in (
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
        np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}
    return [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), np.ndarray, np.dtype, numpy_core.multiarray._reconstruct,
            numpy_core.multiarray.scalar, *sorted(dtype_classes, key=lambda c: c.__name__)]


def allow_mmengine_checkpoints():
    """Let ``torch.load(weights_only=True)`` read mmengine checkpoints (resume, test)."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # torch < 2.4 loads everything anyway
        add_safe_globals(mmengine_checkpoint_globals())


def atomic_write(data, path, mode='wb', encoding=None):
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(e.errno, disk_full_message(path, len(data), folder)) from e
        raise


class DiskFullError(OSError):
    """No space left while writing a file (the previous version of the file is intact)."""


def disk_full_message(path, size, folder):
    import shutil

    free = shutil.disk_usage(folder).free
    return (f'disk full while writing {path}: it needs {size / 2 ** 20:.1f} MiB, '
            f'{free / 2 ** 20:.1f} MiB are free in {folder}. Nothing was replaced (the previous '
            'checkpoint is intact). Free some space (old checkpoints; '
            'default_hooks.checkpoint.max_keep_ckpts keeps fewer) and continue with --resume.')


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_local_writes_atomic():
    """Route mmengine's ``LocalBackend.put``/``put_text`` (checkpoints, dumps) through
    :func:`atomic_write`."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    if getattr(LocalBackend.put, 'windowlab_atomic', False):
        return

    def put(self, obj, filepath):
        atomic_write(obj, str(filepath))

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write(obj, str(filepath), mode='w', encoding=encoding)

    put.windowlab_atomic = put_text.windowlab_atomic = True
    LocalBackend.put, LocalBackend.put_text = put, put_text


def allow_cpu_distributed():
    """Let mmengine's ``pytorch`` launcher start gloo process groups without CUDA."""
    from mmengine.dist import utils as dist_utils

    original = dist_utils._init_dist_pytorch
    if getattr(original, 'windowlab_cpu', False):
        return

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or backend != 'gloo' or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend=backend, **kwargs)

    init_dist_pytorch.windowlab_cpu = True
    dist_utils._init_dist_pytorch = init_dist_pytorch


allow_mmengine_checkpoints()
make_local_writes_atomic()
allow_cpu_distributed()
