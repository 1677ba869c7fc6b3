"""The parity fixtures themselves: the committed compact set is complete and its controls
are far above its tolerances; the full set in ../shared (when present) has the same layout
and the same key listings, so the listings are read from the committed copy."""
import json

import pytest

from conftest import COMPACT, FIXTURE_SETS

NAMES = ('swin_cls', 'swin_det', 'vsa_cls', 'vsa_det', 'biformer_cls', 'biformer_det',
         'vwformer_head', 'polyvit', 'polytwins', 'polyswin')
SPEC_KEYS = {'source_repo', 'commit', 'class', 'constructor_kwargs', 'how_loaded',
             'input_shape', 'outputs', 'suggested_atol'}


def files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file())


@pytest.mark.parametrize('name', NAMES)
def test_every_fixture_is_there(fixture_set, name):
    root = FIXTURE_SETS[fixture_set] / name
    spec = json.loads((root / 'spec.json').read_text())
    assert SPEC_KEYS <= spec.keys(), sorted(SPEC_KEYS - spec.keys())
    assert files(root) == files(COMPACT / name)   # both sets: same files, same schema
    assert spec['outputs'].keys() == json.loads(
        (COMPACT / name / 'spec.json').read_text())['outputs'].keys()


@pytest.mark.parametrize('name', NAMES)
def test_compact_controls_are_far_above_the_tolerance(name):
    """Every quirk moves some output by > 100 x suggested_atol (0 only for an output the
    change cannot reach), as the fixture README states."""
    spec = json.loads((COMPACT / name / 'spec.json').read_text())
    assert spec['controls']
    for quirk, moved in spec['controls'].items():
        moves = moved.values() if isinstance(moved, dict) else [moved]
        assert max(moves) > 100 * spec['suggested_atol'], quirk
        assert all(m == 0 or m > 100 * spec['suggested_atol'] for m in moves), quirk


def test_key_listings_are_those_of_the_committed_copy(fixture_set):
    root = FIXTURE_SETS[fixture_set] / 'keys'
    committed = sorted(str(p.relative_to(COMPACT / 'keys'))
                       for p in (COMPACT / 'keys').rglob('*.json'))
    assert len(committed) == 21  # 10 backbones/heads, 11 whole dense models (dense/)
    for name in committed:
        assert json.loads((root / name).read_text()) == json.loads(
            (COMPACT / 'keys' / name).read_text()), name
