"""BiFormer backbone: parity with the official code, converters, parameter counts, training."""
import pytest
import torch

import windowlab.projects.biformer  # noqa: F401  (registers BiFormer and its layers)
from conftest import assert_control, random_state_dict
from windowlab.projects.biformer import BiFormer
from windowlab.converters import load_state_dict_strict
from windowlab.projects.biformer.converter import convert_biformer, convert_biformer_classifier

# A small recipe (depth [1,1,2,1], global stage 4 with 8 heads) for the tests without fixtures.
SMALL_ARCH = dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
IMPLS = ('fast', 'gather')
# What windowlab's BiFormer implements: the released recipe's fixed options.
RELEASED_OPTIONS = dict(kv_downsample_mode='identity', kv_per_wins=[-1, -1, -1, -1],
                        side_dwconv=5, before_attn_dwconv=3, layer_scale_init_value=-1,
                        param_routing=False, diff_routing=False, soft_routing=False,
                        pre_norm=True, pe=None, qk_scale=None)


def _classifier(arch, num_classes, in_channels, impl='fast', **kwargs):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='BiFormer', arch=arch,
                      attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl), **kwargs),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels)))


def _dense(arch=SMALL_ARCH, n_win=8, impl='fast', **kwargs):
    return BiFormer(arch=arch, n_win=n_win, auto_pad=True, out_indices=(0, 1, 2, 3),
                    out_norm_cfg=dict(type='LN2d'),
                    attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl), **kwargs)


def biformer_kwargs(fx):
    """Official ``BiFormer`` / ``BiFormer_mm`` kwargs of a fixture -> windowlab BiFormer kwargs
    (``arch``, ``n_win``, ``topks``, ``mlp_ratio``)."""
    kwargs = fx.kwargs
    assert {k: kwargs[k] for k in RELEASED_OPTIONS} == RELEASED_OPTIONS
    assert kwargs['qk_dims'] == kwargs['embed_dim'] and len(set(kwargs['mlp_ratios'])) == 1
    *routed, last = kwargs['topks']
    assert last == -2 and min(routed) > 0  # -2: stage 4 is global attention with LCE
    # BRA stages have dim // head_dim heads; the global stage 4 AttentionLePE's default 8
    heads = [dims // kwargs['head_dim'] for dims in kwargs['embed_dim'][:3]] + [8]
    return dict(arch=dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depth'],
                          num_heads=heads),
                n_win=kwargs['n_win'], topks=(*routed, -1), mlp_ratio=kwargs['mlp_ratios'][0])


def fixture_classifier(fx, impl='fast'):
    return _classifier(num_classes=fx.kwargs['num_classes'],
                       in_channels=fx.kwargs['embed_dim'][-1], impl=impl, **biformer_kwargs(fx))


def fixture_dense(fx, impl='fast', **kwargs):
    assert fx.kwargs['auto_pad']
    return _dense(impl=impl, **biformer_kwargs(fx), **kwargs)


def bra_modules(model):
    return [m for m in model.modules() if type(m).__name__ == 'BiLevelRoutingAttention']


def cls_outputs(fx, impl='fast', tweak=None):
    """``{'features', 'logits'}`` of the converted official classifier."""
    model = fixture_classifier(fx, impl)
    load_state_dict_strict(model, convert_biformer_classifier(fx.load('official.pth')['model']))
    model.eval()
    if tweak:
        tweak(model)
    x = fx.load('input.pt')
    with torch.no_grad():
        return dict(features=model.backbone(x)[0], logits=model(x, mode='tensor'))


def dense_outputs(fx, impl='fast', tweak=None):
    """``{'feat0'..'feat3'}`` of the converted official detection backbone."""
    model = fixture_dense(fx, impl)
    load_state_dict_strict(model, convert_biformer(fx.load('official_det.pth')['state_dict']))
    model.eval()
    if tweak:
        tweak(model)
    with torch.no_grad():
        return {f'feat{i}': f for i, f in enumerate(model(fx.load('input.pt')))}


@pytest.mark.parametrize('impl', IMPLS)
def test_classification_parity(parity_fixture, impl):
    fx = parity_fixture('biformer_cls')
    expected = fx.load('expected.pt')
    outputs = cls_outputs(fx, impl)
    # measured: features 9.5e-6 (compact; |max| 26), 1.3e-4 (full; |max| 123), logits <= 4.5e-6
    for name, out in outputs.items():
        assert out.shape == expected[name].shape, name
        torch.testing.assert_close(out, expected[name], rtol=0, atol=fx.atol)


@pytest.mark.parametrize('impl', IMPLS)
def test_dense_parity_with_padding(parity_fixture, impl):
    fx = parity_fixture('biformer_det')
    expected = fx.load('expected.pt')
    outputs = dense_outputs(fx, impl)
    n_win = fx.kwargs['n_win']
    # every BRA stage but the last pads its map to a multiple of n_win
    assert all(f.shape[2] % n_win or f.shape[3] % n_win for f in list(outputs.values())[:3])
    for name, feat in outputs.items():  # measured: <= 2.9e-6 (compact), 1.0e-5 (full)
        assert feat.shape == expected[name].shape, name
        torch.testing.assert_close(feat, expected[name], rtol=0, atol=fx.atol)


def route_to_all_regions(model):
    for bra in bra_modules(model):
        bra.topk = bra.n_win ** 2


def scale_from_head_dim(model):
    for bra in bra_modules(model):
        bra.scale = (bra.qk_dims // bra.num_heads) ** -0.5


def max_moves(outputs, expected):
    return {k: (v - expected[k]).abs().max().item() for k, v in outputs.items()}


@pytest.mark.parametrize('quirk,tweak', [('routing_all_regions', route_to_all_regions),
                                         ('bra_scale_from_head_dim', scale_from_head_dim)])
def test_classification_quirks_matter(parity_fixture, quirk, tweak):
    """Controls: attending to every region, or scaling by the head width, moves the outputs."""
    fx = parity_fixture('biformer_cls')
    assert_control(fx, quirk, max_moves(cls_outputs(fx, tweak=tweak), fx.load('expected.pt')))


def test_dense_routing_matters(parity_fixture):
    fx = parity_fixture('biformer_det')
    moves = max_moves(dense_outputs(fx, tweak=route_to_all_regions), fx.load('expected.pt'))
    assert_control(fx, 'routing_all_regions', moves)


def test_dense_from_classification_checkpoint(parity_fixture):
    """init_cfg=Pretrained with the official classification file, as BiFormer_mm(pretrained=...):
    final norm and head are dropped, norm0..3 stay at their fresh LayerNorm init."""
    fx = parity_fixture('biformer_cls')
    det = parity_fixture('biformer_det')
    model = fixture_dense(det, init_cfg=dict(type='Pretrained',
                                             checkpoint=str(fx.path('official.pth'))))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        feat3 = model(det.load('input.pt'))[3]
    torch.testing.assert_close(feat3, det.load('expected.pt')['cls_ckpt_feat3'], rtol=0,
                               atol=det.atol)
    assert torch.equal(model.norm3.weight, torch.ones(det.kwargs['embed_dim'][-1]))


@pytest.mark.parametrize('arch,in_channels,expected', [
    ('tiny', 512, 13_142_760), ('small', 512, 25_536_232), ('base', 768, 56_804_968)])
def test_parameter_counts(arch, in_channels, expected):
    model = _classifier(arch, 1000, in_channels)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_full_size_classification_keys_load_strictly(key_listing):
    listing = key_listing('biformer_small.json')
    official = random_state_dict(listing['keys'])
    model = _classifier('small', 1000, 512)
    converted = convert_biformer_classifier(official)
    load_state_dict_strict(model, converted)
    assert len(converted) == len(official) == 518
    assert torch.equal(model.backbone.stages[0][0].attn.qkv.weight,
                       official['stages.0.0.attn.qkv.qkv.weight'])
    assert torch.equal(model.backbone.stages[3][3].mlp.fc2.weight,
                       official['stages.3.3.mlp.3.weight'])
    assert torch.equal(model.backbone.norm3.running_var, official['norm.running_var'])
    assert torch.equal(model.head.fc.weight, official['head.weight'])


def test_full_size_dense_keys_load_strictly(key_listing):
    listing = key_listing('biformer_small_det_backbone.json')
    official = random_state_dict(listing['keys'])
    model = _dense('small', n_win=16)
    converted = convert_biformer(official)
    load_state_dict_strict(model, converted)
    assert len(converted) == 519
    assert torch.equal(model.norm2.weight, official['backbone.extra_norms.2.weight'])
    assert torch.equal(model.downsamples[2].conv.weight,
                       official['backbone.downsample_layers.3.0.weight'])
    # converting windowlab keys again is the identity
    assert convert_biformer(converted).keys() == converted.keys()


def test_converter_rejects_foreign_keys():
    with pytest.raises(KeyError, match='not a BiFormer checkpoint'):
        convert_biformer({'layers.0.blocks.0.attn.qkv.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='unexpected key'):
        convert_biformer({'downsample_layers.0.0.weight': torch.zeros(1),
                          'stages.0.0.gamma1': torch.zeros(1)})


def test_classifier_rejects_sizes_not_divisible_by_n_win():
    model = BiFormer(arch=SMALL_ARCH).eval()
    with pytest.raises(ValueError, match='not divisible by n_win=7'):
        model(torch.randn(1, 3, 200, 200))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_registered_for_every_task(scope):
    from importlib import import_module
    registry = import_module(f'{scope}.registry').MODELS
    model = registry.build(dict(type='BiFormer', arch=SMALL_ARCH, n_win=4, auto_pad=True,
                                out_indices=(1, 3), out_norm_cfg=dict(type='LN2d')))
    feats = model(torch.randn(1, 3, 75, 61))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 10, 8), (1, 256, 3, 2)]


def test_init_weights_gives_the_official_init():
    """Built modules keep torch's defaults; init_weights() applies the official init
    (truncated-normal linears with std 0.02, zero biases), as the other backbones do."""
    model = BiFormer(arch=SMALL_ARCH)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    before = [m.weight.detach().clone() for m in linears]
    model.init_weights()
    assert all(not torch.equal(b, m.weight) for b, m in zip(before, linears))
    assert all(abs(m.weight.std() - 0.02) < 0.004 for m in linears if m.weight.numel() >= 4096)
    assert all(not m.bias.any() for m in linears if m.bias is not None)


def test_training_step_reaches_every_parameter():
    # no stochastic depth here: a block dropped for the whole batch would get no gradient
    model = _dense(n_win=4, drop_path_rate=0.0, norm_eval=True).train()
    assert not model.stem.norm1.training and model.stages[0][0].norm1.training
    feats = model(torch.randn(2, 3, 96, 80))
    sum(f.square().mean() for f in feats).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_converter_cli(parity_fixture, tmp_path):
    import runpy
    from conftest import REPO
    convert_file = runpy.run_path(
        str(REPO / 'tools/model_converters/biformer2windowlab.py'))['convert_file']
    src = parity_fixture('biformer_cls').path('official.pth')
    sd, meta = convert_file(str(src), str(tmp_path / 'cls.pth'))
    saved = torch.load(tmp_path / 'cls.pth', weights_only=True)
    assert saved['meta']['layout'] == meta['layout'] == 'ImageClassifier'
    fx = parity_fixture('biformer_cls')
    load_state_dict_strict(fixture_classifier(fx), saved['state_dict'])
    convert_file(str(src), str(tmp_path / 'backbone.pth'), backbone_only=True)
    saved = torch.load(tmp_path / 'backbone.pth', weights_only=True)['state_dict']
    assert not any(k.startswith(('head.', 'backbone.norm')) for k in saved)
    dense = fixture_dense(parity_fixture('biformer_det'))
    load_state_dict_strict(dense, {k[len('backbone.'):]: v for k, v in saved.items()},
                           optional=[f'norm{i}.' for i in range(4)])
