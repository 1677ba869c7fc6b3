"""`import windowlab` makes one type name build in all three libraries, without shadowing."""
import pytest
from torch import nn

import windowlab
from windowlab.models import WLSwinTransformer
from windowlab.registry import LAYERS, register_model

SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


@pytest.mark.parametrize('scope', SCOPES)
def test_windowlab_swin_builds_in_every_scope(scope):
    from importlib import import_module

    from mmengine.registry import DefaultScope
    registry = import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        ours = registry.build(dict(type='WLSwinTransformer', arch='tiny'))
        upstream = registry.build(dict(type='SwinTransformer'))
    assert type(ours) is WLSwinTransformer
    # The upstream name still builds the library's own Swin, not ours.
    assert type(upstream).__module__.startswith(scope) and type(upstream) is not WLSwinTransformer


def test_registering_an_upstream_name_raises():
    from mmdet.registry import MODELS
    MODELS.get('WLSwinTransformer')  # mmdet's registry has loaded windowlab: names are checked now
    with pytest.raises(KeyError, match='SwinTransformer.*already registered'):
        @register_model('SwinTransformer', tasks=('det',))
        class Impostor(nn.Module):
            pass


def test_unknown_layer_type_names_the_choices():
    with pytest.raises(KeyError, match="unknown windowlab layer type 'WindowMSB'.*WindowMSA"):
        LAYERS.build(dict(type='WindowMSB'))


def test_unknown_layer_argument_names_the_layer():
    with pytest.raises(TypeError, match='WindowMSA.*window'):
        LAYERS.build(dict(type='WindowMSA', embed_dims=8, num_heads=2, window=7))


def test_projects_are_found_by_name_after_import():
    """`import windowlab` alone (no custom_imports) makes every paper's types buildable."""
    assert windowlab.PROJECTS == ['biformer', 'shift_equivariant', 'vsa', 'vwformer']
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for name in ('BiFormer', 'ViTAEv2VSA', 'PolyViT', 'PolyTwins', 'PolySwin'):
        assert all(registry.get(name) is not None for registry in (CLS, DET, SEG)), name
    assert SEG.get('VWHead') is not None
    assert DET.get('VWHead') is None  # a segmentation head only
    layer = LAYERS.build(
        dict(type='BiLevelRoutingAttention', embed_dims=8, num_heads=2, n_win=2, topk=1))
    assert type(layer).__name__ == 'BiLevelRoutingAttention'


def _imported_after(code):
    """The task libraries' model packages a fresh interpreter has imported after ``code``."""
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, '-c', code + '\nimport sys; print(sorted(m for m in ("mmdet.models", '
         '"mmseg.models", "mmpretrain.models", "mmseg") if m in sys.modules))'],
        capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_import_windowlab_imports_no_task_library():
    assert _imported_after('import windowlab') == '[]'


def test_a_detection_build_does_not_import_mmseg():
    code = ('import windowlab\nfrom mmengine.registry import DefaultScope\n'
            'from mmdet.registry import MODELS\n'
            'with DefaultScope.overwrite_default_scope("mmdet"):\n'
            '    MODELS.build(dict(type="WLSwinTransformer", arch="tiny"))')
    # mmdet's own models import mmpretrain's (its re-id heads); mmseg stays out
    assert _imported_after(code) == "['mmdet.models', 'mmpretrain.models']"


def test_a_library_imported_before_windowlab_still_gets_its_models():
    code = ('import mmseg.models\nfrom mmseg.registry import MODELS\nMODELS.get("FPN")\n'
            'import windowlab\nassert MODELS.get("VWHead") is not None')
    assert 'mmseg.models' in _imported_after(code)
