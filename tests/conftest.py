"""Shared test helpers.

Parity fixtures live in ``../shared/fixtures`` next to the checkout (or in
``$WINDOWLAB_FIXTURES``). Without them a parity test skips with the reason, except under
``CI=true``, where a missing fixture is a failure.
"""
import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get('WINDOWLAB_FIXTURES', REPO.parent / 'shared' / 'fixtures'))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """Tests build models under different OpenMMLab scopes (mmdet, mmseg, mmpretrain);
    a scope set by one test (mmengine keeps the newest DefaultScope) must not leak into
    the next."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        del DefaultScope._instance_dict[name]


class Fixture:
    """One fixture folder: ``spec``, ``load(name)``, ``path(name)``, ``atol``."""

    def __init__(self, root):
        self.root = Path(root)
        spec = self.root / 'spec.json'
        self.spec = json.loads(spec.read_text()) if spec.exists() else {}

    def path(self, name):
        return self.root / name

    def load(self, name):
        return torch.load(self.root / name, map_location='cpu', weights_only=True)

    @property
    def atol(self):
        return float(self.spec['suggested_atol'])


def _missing(what):
    msg = (f'{what} not found under {FIXTURES}; it comes from the shared/ folder beside the '
           'checkout (or set WINDOWLAB_FIXTURES)')
    if os.environ.get('CI') == 'true':
        pytest.fail(msg + ' -- under CI=true a missing fixture is a failure')
    pytest.skip(msg)


@pytest.fixture
def parity_fixture():
    """``parity_fixture('swin_cls')`` -> :class:`Fixture`, skipping/failing if absent."""

    def get(name):
        root = FIXTURES / name
        if not root.is_dir():
            _missing(f'parity fixture {name!r}')
        return Fixture(root)

    return get


@pytest.fixture
def key_listing():
    """``key_listing('swin_tiny_patch4_window7_224.json')`` -> dict with a ``keys`` mapping."""

    def get(name):
        path = FIXTURES / 'keys' / name
        if not path.is_file():
            _missing(f'key listing {name!r}')
        return json.loads(path.read_text())

    return get


def random_state_dict(shapes, seed=0):
    """Random float tensors (int64 zeros for index buffers) for a ``{key: shape}`` listing."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith(('relative_position_index', 'num_batches_tracked')):
            out[key] = torch.zeros(shape, dtype=torch.long)
        else:
            out[key] = torch.randn(shape, generator=g)
    return out
