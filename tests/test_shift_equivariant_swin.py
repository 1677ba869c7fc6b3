"""PolySwin = WLSwinTransformer + anchoring components: official parity (logits, features,
anchors), full-size key listing, exact invariance and exact dense equivariance."""
import pytest
import torch
from conftest import assert_control, random_state_dict
from test_shift_equivariant import (build_model, classifier, control_moves, level_errors,
                                    no_anchoring, random_shifts, randomize_, run_fixture)
from test_swin_parity import swin_kwargs
from torch import nn

import windowlab.projects.shift_equivariant  # noqa: F401
from windowlab.models.layers.window_attention import WindowMSA
from windowlab.projects.shift_equivariant import PolySwinBlock
from windowlab.projects.shift_equivariant.poly_swin import PolyWindowMSA
from windowlab.projects.shift_equivariant.converter import convert_polyswin
from windowlab.registry import LAYERS

SWIN_TINY = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])


def polyswin_classifier(arch=SWIN_TINY, num_classes=10, **kwargs):
    dims = arch['embed_dims'] * 2 ** (len(arch['depths']) - 1) if isinstance(arch, dict) else 768
    return classifier(dict(type='PolySwin', arch=arch, **kwargs), num_classes, dims, pool=True)


def polyswin_kwargs(fx):
    """PolySwin kwargs from the official constructor kwargs of a fixture (the official PolySwin
    takes the official Swin's arguments)."""
    spec = fx.kwargs
    assert not spec['ape'] and spec['patch_norm']
    return swin_kwargs(spec)


def official_polyswin(fx):
    kwargs = polyswin_kwargs(fx)
    model = polyswin_classifier(kwargs.pop('arch'), fx.kwargs['num_classes'], **kwargs)
    model.load_state_dict(convert_polyswin(fx.load('official.pth')), strict=True)
    return model.eval()


def polyswin_features(model, x):
    return model.neck(model.backbone(x))[-1]


def test_polyswin_matches_official(parity_fixture):
    fx = parity_fixture('polyswin')
    run_fixture(fx, official_polyswin(fx), polyswin_features)


@pytest.mark.parametrize('quirk', ['no_anchoring', 'shifted_windows_with_swin_mask'])
def test_polyswin_quirks_matter(parity_fixture, monkeypatch, quirk):
    """Controls: without anchoring, or with Swin's shift mask, the outputs move."""
    fx = parity_fixture('polyswin')
    model = official_polyswin(fx)
    if quirk == 'no_anchoring':
        no_anchoring(monkeypatch)
    else:
        monkeypatch.setattr(PolyWindowMSA, 'forward', WindowMSA.forward)
    assert_control(fx, quirk, control_moves(fx, model, polyswin_features))


def test_polyswin_tiny_checkpoint_converts_and_loads_strictly(key_listing):
    keys = key_listing('polyswin_tiny.json')
    state_dict = convert_polyswin({'model': random_state_dict(keys['keys'])})
    model = polyswin_classifier('tiny', 1000)
    model.load_state_dict(state_dict, strict=True)
    assert sum(p.numel() for p in model.parameters()) == keys['n_params']


def test_polyswin_is_the_core_swin_with_components():
    backbone = build_model(dict(type='PolySwin', arch=SWIN_TINY))
    from windowlab.models.backbones.swin import WLSwinTransformer
    assert isinstance(backbone, WLSwinTransformer)
    assert type(backbone.patch_embed).__name__ == 'PolyPatchEmbed'
    assert type(backbone.stages[0].downsample).__name__ == 'PolyPatchMerging'
    assert all(isinstance(b, PolySwinBlock) for s in backbone.stages for b in s.blocks)
    assert backbone.stages[0].blocks[1].attn.shift_size == 3


def test_poly_window_attention_commutes_with_window_multiple_shifts():
    """No shift mask: the shifted-window op commutes with rolls by multiples of the window;
    the masked Swin attention does not (control)."""
    torch.manual_seed(0)
    cfg = dict(embed_dims=8, num_heads=2, window_size=7, shift_size=3)
    poly, plain = LAYERS.build(dict(type='PolyWindowMSA', **cfg)), LAYERS.build(
        dict(type='WindowMSA', **cfg))
    with torch.no_grad():
        poly.rel_pos.table.normal_()
    plain.load_state_dict(poly.state_dict())
    x = torch.randn(2, 14, 21, 8)
    s = (7, -14)

    def err(layer):
        with torch.no_grad():
            out = layer(x.flatten(1, 2), (14, 21)).view(2, 14, 21, 8)
            out_s = layer(x.roll(s, (1, 2)).flatten(1, 2), (14, 21)).view(2, 14, 21, 8)
        return (out_s - out.roll(s, (1, 2))).abs().max().item()

    assert err(poly) < 1e-5
    assert err(plain) > 1e-2
    with pytest.raises(ValueError, match='multiple of the window'):
        poly(torch.randn(1, 10 * 14, 8), (10, 14))


def test_rolled_back_block_commutes_with_every_circular_shift():
    torch.manual_seed(0)
    attn_cfg = dict(type='PolyWindowMSA', embed_dims=8, num_heads=2, window_size=7, shift_size=3)
    block = randomize_(LAYERS.build(dict(type='PolySwinBlock', embed_dims=8, attn_cfg=attn_cfg,
                                         roll_back=True)))
    official = randomize_(LAYERS.build(dict(type='PolySwinBlock', embed_dims=8,
                                            attn_cfg=attn_cfg)))
    x = torch.randn(2, 14, 14, 8)
    errs, official_errs = [], []
    with torch.no_grad():
        for s in [(1, 2), (-5, 3), (6, 13)]:
            for layer, out in ((block, errs), (official, official_errs)):
                y = layer(x.flatten(1, 2), (14, 14)).view(2, 14, 14, 8)
                ys = layer(x.roll(s, (1, 2)).flatten(1, 2), (14, 14)).view(2, 14, 14, 8)
                out.append((ys - y.roll(s, (1, 2))).abs().max().item())
    assert max(errs) < 1e-5
    assert max(official_errs) > 1e-2


@pytest.mark.parametrize('roll_back', [False, True])
def test_polyswin_classifier_is_exactly_shift_invariant(roll_back):
    model = randomize_(polyswin_classifier(roll_back=roll_back), seed=1)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x)
        for s in random_shifts(2, 224, seed=3):
            torch.testing.assert_close(model(torch.roll(x, s, dims=(2, 3))), logits, rtol=0,
                                       atol=1e-4)
    assert logits.std() > 0.1


def test_dense_polyswin_feature_maps_are_exactly_equivariant():
    backbone = randomize_(build_model(dict(type='PolySwin', arch=SWIN_TINY,
                                            out_indices=(0, 1, 2, 3), roll_back=True)))
    x = torch.randn(2, 3, 224, 448, generator=torch.Generator().manual_seed(0))  # non-square
    strides = (4, 8, 16, 32)
    for shift in random_shifts(2, 7, seed=1, multiple=32) + [(32, -64), (-64, 160)]:
        assert max(level_errors(backbone, x, shift, strides)) < 1e-5, shift
    official = randomize_(build_model(dict(type='PolySwin', arch=SWIN_TINY,
                                            out_indices=(0, 3))))
    assert level_errors(official, x, (32, -64), (4, 32))[0] > 1e-1


def test_polyswin_trains():
    torch.manual_seed(0)
    model = polyswin_classifier(roll_back=True, drop_path_rate=0.0)
    model.init_weights()
    model.train()
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 224, 224)), torch.tensor([0, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dense_polyswin_init_cfg_loads_the_official_file(parity_fixture):
    fx = parity_fixture('polyswin')
    official = fx.load('official.pth')['model']
    backbone = build_model(dict(type='PolySwin', out_indices=(0, 1, 2, 3), roll_back=True,
                                init_cfg=dict(type='Pretrained',
                                              checkpoint=str(fx.path('official.pth'))),
                                **polyswin_kwargs(fx)))
    backbone.init_weights()
    assert torch.equal(backbone.stages[2].downsample.proj.weight,
                       official['layers.2.downsample.proj.weight'])
    assert torch.equal(backbone.stages[1].blocks[1].attn.rel_pos.table,
                       official['layers.1.blocks.1.attn.relative_position_bias_table'])
