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


def test_projects_are_loaded_on_import():
    """`import windowlab` alone (no custom_imports) makes every paper's types buildable."""
    assert windowlab.PROJECTS == ['biformer', 'shift_equivariant', 'vsa', 'vwformer']
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for name in ('BiFormer', 'ViTAEv2VSA', 'PolyViT', 'PolyTwins', 'PolySwin'):
        assert all(name in registry.module_dict for registry in (CLS, DET, SEG)), name
    assert 'VWHead' in SEG.module_dict
    assert {'VSAWindowAttention', 'BiLevelRoutingAttention'} <= set(LAYERS.module_dict)
