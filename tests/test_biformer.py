"""BiFormer backbone: parity with the official code, converters, parameter counts, training."""
import pytest
import torch

import windowlab.projects.biformer  # noqa: F401  (registers BiFormer and its layers)
from conftest import random_state_dict
from windowlab.projects.biformer import BiFormer
from windowlab.converters import load_state_dict_strict
from windowlab.converters.biformer import convert_biformer, convert_biformer_classifier

# The fixtures' shrunk recipe: depth [1,1,2,1], dims [32..256], head_dim 32, global stage 4 (8 heads).
SMALL_ARCH = dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
IMPLS = ('fast', 'gather')


def _classifier(arch, num_classes, in_channels, impl='fast'):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='BiFormer', arch=arch,
                      attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels)))


def _dense(arch=SMALL_ARCH, n_win=8, impl='fast', **kwargs):
    return BiFormer(arch=arch, n_win=n_win, auto_pad=True, out_indices=(0, 1, 2, 3),
                    out_norm_cfg=dict(type='LN2d'),
                    attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl), **kwargs)


@pytest.mark.parametrize('impl', IMPLS)
def test_classification_parity(parity_fixture, impl):
    fx = parity_fixture('biformer_cls')
    assert fx.spec['constructor_kwargs']['topks'] == [1, 4, 16, -2]  # stage 4 = global + LCE
    model = _classifier(SMALL_ARCH, 10, 256, impl)
    load_state_dict_strict(model, convert_biformer_classifier(fx.load('official.pth')['model']))
    model.eval()
    x, expected = fx.load('input.pt'), fx.load('expected.pt')
    with torch.no_grad():
        features = model.backbone(x)[0]
        logits = model(x, mode='tensor')
    # measured: features 1.3e-4 (|max| 123), logits 4.5e-6
    torch.testing.assert_close(features, expected['features'], rtol=0, atol=fx.atol)
    torch.testing.assert_close(logits, expected['logits'], rtol=0, atol=fx.atol)


@pytest.mark.parametrize('impl', IMPLS)
def test_dense_parity_with_padding(parity_fixture, impl):
    fx = parity_fixture('biformer_det')
    model = _dense(n_win=fx.spec['constructor_kwargs']['n_win'], impl=impl)
    load_state_dict_strict(model, convert_biformer(fx.load('official_det.pth')['state_dict']))
    model.eval()
    x, expected = fx.load('input.pt'), fx.load('expected.pt')
    with torch.no_grad():
        feats = model(x)
    assert [tuple(f.shape[2:]) for f in feats] == [(63, 83), (32, 42), (16, 21), (8, 11)]
    for i, feat in enumerate(feats):  # measured: <= 9.2e-6
        torch.testing.assert_close(feat, expected[f'feat{i}'], rtol=0, atol=fx.atol)


def test_dense_from_classification_checkpoint(parity_fixture):
    """init_cfg=Pretrained with the official classification file, as BiFormer_mm(pretrained=...):
    final norm and head are dropped, norm0..3 stay at their fresh LayerNorm init."""
    fx = parity_fixture('biformer_cls')
    model = _dense(init_cfg=dict(type='Pretrained', checkpoint=str(fx.path('official.pth'))))
    model.init_weights()
    model.eval()
    det = parity_fixture('biformer_det')
    with torch.no_grad():
        feat3 = model(det.load('input.pt'))[3]
    torch.testing.assert_close(feat3, det.load('expected.pt')['cls_ckpt_feat3'], rtol=0,
                               atol=det.atol)
    assert torch.equal(model.norm3.weight, torch.ones(256))


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
    load_state_dict_strict(_classifier(SMALL_ARCH, 10, 256), saved['state_dict'])
    convert_file(str(src), str(tmp_path / 'backbone.pth'), backbone_only=True)
    saved = torch.load(tmp_path / 'backbone.pth', weights_only=True)['state_dict']
    assert not any(k.startswith(('head.', 'backbone.norm')) for k in saved)
    dense = _dense()
    load_state_dict_strict(dense, {k[len('backbone.'):]: v for k, v in saved.items()},
                           optional=[f'norm{i}.' for i in range(4)])
