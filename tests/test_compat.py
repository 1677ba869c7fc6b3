"""Each workaround of windowlab.compat has a test that fails without it."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import windowlab  # noqa: F401  (applies the fixes)


def mmengine_style_checkpoint():
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('iter', 7)
    return {'meta': {'message_hub': hub.state_dict(), 'iter': 7,
                     'rng_state': {'numpy': np.random.get_state()}},
            'state_dict': {'w': torch.ones(2)}}


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(mmengine_style_checkpoint(), path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['meta']['message_hub']['log_scalars']['train/loss'].mean() == 1.5


def test_without_windowlab_weights_only_load_fails(tmp_path):
    """The failure the allow-list fixes (fresh interpreter, windowlab not imported)."""
    path = tmp_path / 'ckpt.pth'
    torch.save(mmengine_style_checkpoint(), path)
    code = f'import torch, mmengine.logging; torch.load({str(path)!r}, weights_only=True)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode != 0 and 'Weights only load failed' in result.stderr


def test_safe_loader_still_refuses_arbitrary_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, weights_only=True)


def test_getattr_stand_in_only_serves_history_buffer():
    from windowlab.compat import history_buffer_method
    with pytest.raises(TypeError, match='only HistoryBuffer'):
        history_buffer_method(os, 'system')


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous checkpoint intact, not a truncated file."""
    from mmengine.runner.checkpoint import save_checkpoint
    path = str(tmp_path / 'iter_10.pth')
    save_checkpoint({'state_dict': {'w': torch.zeros(1000)}}, path)
    before = open(path, 'rb').read()

    from mmengine.fileio.backends.local_backend import LocalBackend
    real_put = LocalBackend.put

    def dying_put(self, obj, filepath):
        real_put(self, _Truncating(obj), filepath)

    monkeypatch.setattr(LocalBackend, 'put', dying_put)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.ones(1000)}}, path)
    assert open(path, 'rb').read() == before
    assert os.listdir(tmp_path) == ['iter_10.pth']  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would make it


class _Truncating(bytes):
    """Bytes whose writing is interrupted after half of them (a kill during the save)."""

    def __new__(cls, data):
        return super().__new__(cls, data)


_real_fdopen = os.fdopen


@pytest.fixture(autouse=True)
def _interrupt_truncating_writes(monkeypatch):
    def fdopen(fd, *args, **kwargs):
        f = _real_fdopen(fd, *args, **kwargs)
        write = f.write

        def interrupted_write(data):
            if isinstance(data, _Truncating):
                write(bytes(data[:len(data) // 2]))
                raise KeyboardInterrupt
            return write(data)

        f.write = interrupted_write
        return f

    monkeypatch.setattr(os, 'fdopen', fdopen)
