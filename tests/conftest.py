"""Shared test helpers.

Parity fixtures (outputs of the official codes, see ``tests/fixtures/README.md``) come in two
sets:

- ``compact``: small models, committed under ``tests/fixtures``; every clone runs them.
- ``full``: the earlier, larger models in ``../shared/fixtures`` next to the checkout (or in
  ``$WINDOWLAB_FIXTURES``). When present, every parity test runs on them too. Absent, they are
  not collected, except under ``CI=true``, where a missing full set is a failure.

Both sets share one ``spec.json`` schema, so a parity test reads every size it builds and
expects from the spec and is parametrised over the sets through ``parity_fixture``.
"""
import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
COMPACT = REPO / 'tests' / 'fixtures'
FULL = Path(os.environ.get('WINDOWLAB_FIXTURES', REPO.parent / 'shared' / 'fixtures'))
FIXTURE_SETS = {'compact': COMPACT, 'full': FULL}
CI = os.environ.get('CI') == 'true'

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
    """One fixture folder: ``spec``, ``kwargs``, ``load(name)``, ``path(name)``, ``atol``,
    ``controls``; ``set`` is ``'compact'`` or ``'full'``."""

    def __init__(self, root, set_name):
        self.root = Path(root)
        self.set = set_name
        self.spec = json.loads((self.root / 'spec.json').read_text())

    def path(self, name):
        return self.root / name

    def load(self, name):
        return torch.load(self.root / name, map_location='cpu', weights_only=True)

    @property
    def kwargs(self):
        """The official constructor's keyword arguments."""
        return self.spec['constructor_kwargs']

    @property
    def atol(self):
        return float(self.spec['suggested_atol'])

    @property
    def controls(self):
        """``{quirk: max abs change}`` (per output where there are several); the full set
        records none."""
        return self.spec.get('controls', {})

    def __repr__(self):
        return f'Fixture({self.set}: {self.root.name})'


def _present_sets():
    """The compact set always; the full one when present (and always under ``CI=true``, so
    that its absence fails there)."""
    return [name for name in FIXTURE_SETS if name == 'compact' or CI or FULL.is_dir()]


@pytest.fixture(params=_present_sets())
def fixture_set(request):
    """The name of the fixture set a parity test runs on (``compact`` or ``full``)."""
    root = FIXTURE_SETS[request.param]
    if not root.is_dir():  # only collected when absent under CI=true
        pytest.fail(f'the full-size parity fixtures are not under {root}; they come from the '
                    'shared/ folder beside the checkout (or set WINDOWLAB_FIXTURES) -- under '
                    'CI=true a missing fixture set is a failure')
    return request.param


@pytest.fixture
def parity_fixture(fixture_set):
    """``parity_fixture('swin_cls')`` -> :class:`Fixture` of the set this test runs on."""

    def get(name):
        root = FIXTURE_SETS[fixture_set] / name
        if not (root / 'spec.json').is_file():
            pytest.fail(f'parity fixture {name!r} is missing from {root.parent} '
                        f'({fixture_set} set)')
        return Fixture(root, fixture_set)

    return get


@pytest.fixture
def key_listing():
    """``key_listing('swin_tiny_patch4_window7_224.json')`` -> dict with a ``keys`` mapping.

    The listings (keys and shapes of the released full-size checkpoints) are the same in both
    sets (``test_fixtures.py`` checks it), so they are read from the committed copy."""

    def get(name):
        return json.loads((COMPACT / 'keys' / name).read_text())

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


def assert_moves(fx, moved, what='the change'):
    """``moved``: how far a model with one thing changed lands from the expected outputs (max
    abs diff: a number, or ``{output: number}``). The largest move must exceed 100 x the
    tolerance, so that passing the parity test proves that thing is reproduced."""
    moves = moved if isinstance(moved, dict) else {None: moved}
    assert max(moves.values()) > 100 * fx.atol, \
        f'{fx}: {what} moves the outputs by only {moves} (atol {fx.atol})'


def assert_control(fx, quirk, moved):
    """As :func:`assert_moves` for a quirk the spec's ``controls`` records (what the official
    code itself gives with that one thing changed): where recorded (the full set records
    none), every move must equal it, to the 4 digits recorded plus the tolerance, so the test
    drops the same thing the fixture's author did. A recorded 0 (an output the change cannot
    reach) is met by a move within the tolerance."""
    assert_moves(fx, moved, f'dropping {quirk}')
    if not fx.controls:
        return
    assert quirk in fx.controls, f'{fx} records no control {quirk!r}: {sorted(fx.controls)}'
    recorded = fx.controls[quirk]
    moves = moved if isinstance(moved, dict) else {None: moved}
    if not isinstance(recorded, dict):
        recorded = {None: recorded}
    assert moves.keys() == recorded.keys(), (quirk, sorted(moves), sorted(recorded))
    for output, move in moves.items():
        want = recorded[output]
        where = f'{fx}: {quirk}' + (f' on {output}' if output else '')
        assert abs(move - want) <= 1e-3 * want + fx.atol, \
            f'{where} moves it by {move}; the official code records {want}'
