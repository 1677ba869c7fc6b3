"""PolyViT / PolyTwins: official parity (logits, features, anchors), converters, key
listings, exact shift invariance and exact dense equivariance on random weights."""
import subprocess
import sys

import pytest
import torch
from conftest import REPO, assert_control, random_state_dict
from torch import nn

import windowlab.projects.shift_equivariant  # noqa: F401  (registers the models)
from windowlab import launch
from windowlab.converters import unwrap_state_dict
from windowlab.projects.shift_equivariant.converter import convert_polytwins, convert_polyvit
from windowlab.models.layers.polyphase import AnchorRecorder

VIT_TINY = dict(embed_dims=64, depth=2, num_heads=2)
TWINS_TINY = dict(embed_dims=[16, 32, 64, 128], num_heads=[1, 2, 4, 8], depths=[2, 2, 2, 2])


def build_model(cfg):
    """Build from mmpretrain's registry under its scope, whatever scope other tests set."""
    return launch.build_in_scope(cfg, 'mmpretrain')


def classifier(backbone, num_classes, in_channels, pool=False):
    cfg = dict(type='ImageClassifier', backbone=backbone,
               head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels))
    if pool:
        cfg['neck'] = dict(type='GlobalAveragePooling')
    return build_model(cfg)


def polyvit_classifier(arch=VIT_TINY, num_classes=10, **kwargs):
    dims = arch['embed_dims'] if isinstance(arch, dict) else {'small': 384, 'base': 768}[arch]
    return classifier(dict(type='PolyViT', arch=arch, **kwargs), num_classes, dims)


def polytwins_classifier(arch=TWINS_TINY, num_classes=10, **kwargs):
    dims = arch['embed_dims'][-1] if isinstance(arch, dict) else {'small': 512, 'base': 768}[arch]
    return classifier(dict(type='PolyTwins', arch=arch, **kwargs), num_classes, dims, pool=True)


def randomize_(model, seed=0):
    """Non-degenerate random weights (random LayerNorm affine: no polyphase-norm ties)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for name, p in model.named_parameters():
            if name.endswith('cls_token'):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def vit_kwargs(fx):
    """PolyViT kwargs from a fixture's resolved timm architecture."""
    a = fx.spec['resolved_architecture']
    assert a['qkv_bias'] and a['class_token'] and a['global_pool'] == 'token'
    return dict(arch=dict(embed_dims=a['embed_dim'], depth=a['depth'],
                          num_heads=a['num_heads'], mlp_ratio=a['mlp_ratio']),
                patch_size=a['patch_size'])


def twins_kwargs(fx):
    """PolyTwins kwargs from a fixture's resolved timm architecture."""
    a = fx.spec['resolved_architecture']
    assert a['global_pool'] == 'avg'
    return dict(arch=dict(embed_dims=a['embed_dims'], num_heads=a['num_heads'],
                          depths=a['depths'], mlp_ratios=a['mlp_ratios'],
                          window_sizes=a['wss'], sr_ratios=a['sr_ratios']),
                patch_size=a['patch_size'])


def fixture_polyvit(fx):
    kwargs = vit_kwargs(fx)
    return polyvit_classifier(kwargs.pop('arch'), fx.spec['resolved_architecture']['num_classes'],
                              **kwargs)


def fixture_polytwins(fx):
    kwargs = twins_kwargs(fx)
    return polytwins_classifier(kwargs.pop('arch'),
                                fx.spec['resolved_architecture']['num_classes'], **kwargs)


def fixture_outputs(fx, model, features_of, recorders=None):
    """``{logits, features, logits_shift, features_shift}`` on the fixture's two inputs;
    the anchor recorders of the two logits passes go to ``recorders``."""
    out = {}
    for suffix, name in (('', 'input.pt'), ('_shift', 'input_shift.pt')):
        x = fx.load(name)
        with torch.no_grad(), AnchorRecorder() as rec:
            out['logits' + suffix] = model(x)
        with torch.no_grad():
            out['features' + suffix] = features_of(model, x)
        if recorders is not None:
            recorders[suffix] = rec
    return out


def run_fixture(fx, model, features_of):
    """Compare logits, features and the anchors of every anchoring call with the fixture."""
    expected = fx.load('expected.pt')
    recorders = {}
    outputs = fixture_outputs(fx, model, features_of, recorders)
    for suffix, rec in recorders.items():
        assert torch.equal(rec.anchors, expected['anchors' + suffix]), suffix
        assert [p for p, _ in rec.factors] == expected['anchor_p'].tolist()
        assert [h for h, _ in rec.sizes] == expected['anchor_hw'].tolist()
    for name, out in outputs.items():
        assert out.shape == expected[name].shape, name
        torch.testing.assert_close(out, expected[name], rtol=0, atol=fx.atol)


def control_moves(fx, model, features_of):
    expected = fx.load('expected.pt')
    return {name: (out - expected[name]).abs().max().item()
            for name, out in fixture_outputs(fx, model, features_of).items()}


def no_anchoring(monkeypatch):
    """Replace every anchoring call by the identity (anchors 0)."""
    from windowlab.projects.shift_equivariant import layers, poly_swin, poly_twins

    def identity(x, p, hw_dims=(2, 3)):
        return x, torch.zeros(x.shape[0], 2, dtype=torch.long)

    for module in (layers, poly_swin, poly_twins):
        monkeypatch.setattr(module, 'polyphase_anchor', identity)


def zero_padded_pos_convs(model):
    """Position convolutions with zero instead of circular padding."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.padding_mode == 'circular':
            m.padding_mode = 'zeros'


def polyvit_features(m, x):
    m.backbone.out_type = 'raw'
    try:
        return m.backbone(x)[0]
    finally:
        m.backbone.out_type = 'cls_token'


def polytwins_features(m, x):
    return m.backbone(x)[-1].flatten(2).transpose(1, 2)


def official_polyvit(fx):
    model = fixture_polyvit(fx)
    model.load_state_dict(convert_polyvit(fx.load('official.pth')), strict=True)
    return model.eval()


def official_polytwins(fx):
    model = fixture_polytwins(fx)
    model.load_state_dict(convert_polytwins(fx.load('official.pth')), strict=True)
    return model.eval()


def test_polyvit_matches_official(parity_fixture):
    fx = parity_fixture('polyvit')
    run_fixture(fx, official_polyvit(fx), polyvit_features)


def test_polytwins_matches_official(parity_fixture):
    fx = parity_fixture('polytwins')
    run_fixture(fx, official_polytwins(fx), polytwins_features)


@pytest.mark.parametrize('name,quirk', [('polyvit', 'no_anchoring'),
                                        ('polyvit', 'posconv_zero_padding'),
                                        ('polytwins', 'no_anchoring'),
                                        ('polytwins', 'peg_zero_padding')])
def test_quirks_matter(parity_fixture, monkeypatch, name, quirk):
    """Controls: without anchoring, or with zero-padded position convs, the outputs move."""
    fx = parity_fixture(name)
    build, features_of = {'polyvit': (official_polyvit, polyvit_features),
                          'polytwins': (official_polytwins, polytwins_features)}[name]
    model = build(fx)
    if quirk == 'no_anchoring':
        no_anchoring(monkeypatch)
    else:
        zero_padded_pos_convs(model)
    assert_control(fx, quirk, control_moves(fx, model, features_of))


@pytest.mark.parametrize('listing,build', [
    ('polyvit_small.json', lambda: polyvit_classifier('small', 1000)),
    ('polytwins_svt_small.json', lambda: polytwins_classifier('small', 1000)),
    ('polytwins_svt_base.json', lambda: polytwins_classifier('base', 1000)),
])
def test_full_size_checkpoints_convert_and_load_strictly(key_listing, listing, build):
    keys = key_listing(listing)
    convert = convert_polyvit if 'vit' in listing else convert_polytwins
    state_dict = convert({'model': random_state_dict(keys['keys'])})
    model = build()
    model.load_state_dict(state_dict, strict=True)
    assert sum(p.numel() for p in model.parameters()) == keys['n_params']
    assert torch.equal(model.state_dict()['head.fc.weight'], state_dict['head.fc.weight'])


def test_converters_reject_other_models():
    with pytest.raises(KeyError, match='plain ViT'):
        convert_polyvit({'pos_embed': torch.zeros(1), 'pos_conv.proj.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='Twins'):
        convert_polytwins({'blocks.0.0.norm1.weight': torch.zeros(1)})


def test_backbone_init_cfg_loads_official_file(parity_fixture):
    fx = parity_fixture('polytwins')
    official = unwrap_state_dict(fx.load('official.pth'))
    backbone = build_model(dict(type='PolyTwins', out_indices=(0, 1, 2, 3), roll_back=True,
                                init_cfg=dict(type='Pretrained',
                                              checkpoint=str(fx.path('official.pth'))),
                                **twins_kwargs(fx)))
    backbone.init_weights()
    assert torch.equal(backbone.pos_convs[2].proj.weight, official['pos_block.2.proj.0.weight'])
    assert torch.equal(backbone.blocks[1][1].attn.sr.weight, official['blocks.1.1.attn.sr.weight'])


def test_converter_cli(parity_fixture, tmp_path):
    fx = parity_fixture('polyvit')
    dst = tmp_path / 'polyvit.pth'
    subprocess.run([sys.executable, str(REPO / 'tools/model_converters/poly2windowlab.py'),
                    'polyvit', str(fx.path('official.pth')), str(dst)], check=True, cwd=REPO)
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['model'] == 'polyvit'
    fixture_polyvit(fx).load_state_dict(saved['state_dict'], strict=True)


def random_shifts(n, high, seed=0, multiple=1):
    g = torch.Generator().manual_seed(seed)
    return [tuple((torch.randint(-high, high, (2,), generator=g) * multiple).tolist())
            for _ in range(n)]


@pytest.mark.parametrize('build,size', [
    (lambda: polyvit_classifier(patch_size=16), 96),
    (lambda: polytwins_classifier(), 224),
    (lambda: polytwins_classifier(roll_back=True), 224),
])
def test_classifier_is_exactly_shift_invariant(build, size):
    model = randomize_(build(), seed=1)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(x)
        for s in random_shifts(3, size, seed=3):
            shifted = model(torch.roll(x, s, dims=(2, 3)))
            torch.testing.assert_close(shifted, logits, rtol=0, atol=1e-4)
    assert logits.std() > 0.1  # not a degenerate constant output


def level_errors(backbone, x, shift, strides):
    with torch.no_grad():
        ref = backbone(x)
        out = backbone(torch.roll(x, shift, dims=(2, 3)))
    return [(o - torch.roll(r, (shift[0] // s, shift[1] // s), dims=(2, 3))).abs().max().item()
            for o, r, s in zip(out, ref, strides)]


def test_dense_polytwins_feature_maps_are_exactly_equivariant():
    backbone = randomize_(build_model(dict(type='PolyTwins', arch=TWINS_TINY,
                                            out_indices=(0, 1, 2, 3), roll_back=True)))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    strides = (4, 8, 16, 32)
    for shift in random_shifts(2, 7, seed=1, multiple=32) + [(32, -64)]:
        assert max(level_errors(backbone, x, shift, strides)) < 1e-5, shift
    # a shift by a multiple of 4 only: the stride-4 level is still exactly rolled by s / 4
    assert level_errors(backbone, x, (12, -20), strides)[0] < 1e-5
    # any shift: each level is *some* exact circular roll (found by search on the 7x7 level)
    with torch.no_grad():
        last, last_s = backbone(x)[-1], backbone(torch.roll(x, (19, -13), dims=(2, 3)))[-1]
    errs = [min((last_s[b] - torch.roll(last[b], (i, j), dims=(1, 2))).abs().max().item()
                for i in range(7) for j in range(7)) for b in range(2)]
    assert max(errs) < 1e-5


def test_official_polytwins_maps_are_not_equivariant():
    """Control (fixtures README): without roll-back the stride-4 map is misaligned."""
    backbone = randomize_(build_model(dict(type='PolyTwins', arch=TWINS_TINY,
                                            out_indices=(0, 3))))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert level_errors(backbone, x, (32, -64), (4, 32))[0] > 1e-1


def test_polyvit_featmap_is_equivariant_for_multiples_of_the_patch():
    backbone = randomize_(build_model(dict(type='PolyViT', arch=VIT_TINY, out_type='featmap')))
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    for shift in random_shifts(3, 6, multiple=16):
        assert level_errors(backbone, x, shift, (16,))[0] < 1e-5


def test_training_step_gives_finite_gradients_everywhere():
    """No drop path here (a dropped branch has zero gradients); the toy configs train with it."""
    torch.manual_seed(0)
    model = polytwins_classifier(roll_back=True)
    model.init_weights()
    model.train()
    logits = model(torch.randn(2, 3, 224, 224))
    nn.functional.cross_entropy(logits, torch.tensor([1, 7])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bad_sizes_raise_clear_errors():
    backbone = build_model(dict(type='PolyTwins', arch=TWINS_TINY)).eval()
    with pytest.raises(ValueError, match='multiples of p'):
        backbone(torch.randn(1, 3, 200, 200))
    with pytest.raises(ValueError, match='even depths'):
        build_model(dict(type='PolyTwins', arch=dict(TWINS_TINY, depths=[1, 2, 2, 2])))
