"""ViTAEv2-VSA: parity with both official codes, checkpoint conversion, sizes, parameters."""
import runpy
import sys

import pytest
import torch
from conftest import REPO, assert_control, assert_moves, random_state_dict

import windowlab.projects.vsa  # noqa: F401  (registers ViTAEv2VSA)
from windowlab.projects.vsa import ViTAEv2VSA
from windowlab.converters.checkpoint import load_state_dict_strict
from windowlab.projects.vsa.converter import convert_vitaev2_vsa, select_state_dict


def arch_from_spec(kwargs):
    """The official constructor kwargs of a fixture -> a windowlab ``arch`` dict."""
    return dict(embed_dims=kwargs['embed_dims'], token_dims=kwargs['token_dims'],
                depths=kwargs['NC_depth'], rc_heads=kwargs['RC_heads'],
                nc_heads=kwargs['NC_heads'], rc_groups=kwargs['RC_group'],
                nc_groups=kwargs['NC_group'], wide_pcm=kwargs['wide_pcm'])


def backbone_kwargs(kwargs):
    """The official constructor kwargs of a fixture -> ViTAEv2VSA kwargs."""
    return dict(arch=arch_from_spec(kwargs), in_channels=kwargs['in_chans'],
                window_size=kwargs['window_size'], strides=kwargs['downsample_ratios'],
                kernel_sizes=kwargs['kernel_size'], dilations=kwargs['dilations'],
                mlp_ratio=kwargs['mlp_ratio'], qkv_bias=kwargs['qkv_bias'])


def image_classifier(arch, num_classes, head_channels, variant='cls', **kwargs):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ViTAEv2VSA', arch=arch, variant=variant, out_indices=(3,), **kwargs),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=head_channels)))


def fixture_classifier(fx):
    """The classifier of the vsa_cls fixture, sizes from its spec."""
    kwargs = backbone_kwargs(fx.kwargs)
    return image_classifier(kwargs.pop('arch'), fx.kwargs['num_classes'],
                            fx.kwargs['token_dims'][-1], **kwargs)


def backbone_state(converted):
    return {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith('backbone.')}


def zero_window_regression(model):
    """What an implementation without the learned window offsets and scales computes."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'sampling_' in name:
                p.zero_()


def cls_logits(fx, tweak=None):
    model = fixture_classifier(fx).eval()
    load_state_dict_strict(model, convert_vitaev2_vsa(select_state_dict(fx.load('official.pth'))))
    if tweak:
        tweak(model)
    with torch.no_grad():
        return model(fx.load('input.pt'), mode='tensor')


def test_cls_parity_logits(parity_fixture):
    fx = parity_fixture('vsa_cls')
    logits = cls_logits(fx)
    expected = fx.load('expected.pt')['logits']
    assert logits.shape == expected.shape == (fx.spec['input_shape'][0], fx.kwargs['num_classes'])
    diff = (logits - expected).abs().max().item()
    assert diff < fx.atol, diff   # measured 9.3e-6 (compact), 3.3e-6 (full)


def test_cls_windows_must_move(parity_fixture):
    """Control: fixed windows (zeroed offset/scale regression) move the logits."""
    fx = parity_fixture('vsa_cls')
    logits = cls_logits(fx, zero_window_regression)
    assert_control(fx, 'zero_window_regression',
                   (logits - fx.load('expected.pt')['logits']).abs().max().item())


def det_backbone(fx, variant='det'):
    model = ViTAEv2VSA(variant=variant, out_indices=tuple(fx.kwargs['out_indices']),
                       init_cfg=dict(type='Pretrained', checkpoint=str(fx.path('official.pth'))),
                       **backbone_kwargs(fx.kwargs))
    model.init_weights()
    return model.eval()


def det_moves(fx, model):
    """``{feat_i: max abs diff from the expected map}``."""
    with torch.no_grad():
        feats = model(fx.load('input.pt'))
    expected = fx.load('expected.pt')
    return {f'feat{i}': (f - expected[f'feat{i}']).abs().max().item() for i, f in enumerate(feats)}


def test_det_parity_features(parity_fixture):
    """Non-square input, widths not multiples of 7: symmetric padding and the swapped
    offset normalisation are exercised; loaded through init_cfg (EMA weights)."""
    fx = parity_fixture('vsa_det')
    model = det_backbone(fx)
    with torch.no_grad():
        feats = model(fx.load('input.pt'))
    expected = fx.load('expected.pt')
    assert len(feats) == 4
    for i, feat in enumerate(feats):
        assert feat.shape == expected[f'feat{i}'].shape
        diff = (feat - expected[f'feat{i}']).abs().max().item()
        assert diff < fx.atol, (i, diff)   # measured <= 4.2e-5 (compact), 1.5e-5 (full)


def test_det_windows_must_move(parity_fixture):
    """Control: fixed windows (zeroed offset/scale regression) move every feature map."""
    fx = parity_fixture('vsa_det')
    model = det_backbone(fx)
    zero_window_regression(model)
    assert_control(fx, 'zero_window_regression', det_moves(fx, model))


def test_variant_matters_on_the_det_fixture(parity_fixture):
    """The classification behaviour (bottom/right padding, unswapped offsets) does not
    reproduce the detection code."""
    fx = parity_fixture('vsa_det')
    assert_moves(fx, det_moves(fx, det_backbone(fx, variant='cls')), "variant='cls'")


def test_pretrained_reads_ema_by_default(parity_fixture, tmp_path):
    fx = parity_fixture('vsa_cls')
    ema = fx.load('official.pth')['state_dict_ema']
    plain = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in ema.items()}
    path = tmp_path / 'release.pth'
    torch.save({'state_dict': plain, 'state_dict_ema': ema}, path)
    key = 'stages.0.reduction.prm.convs.0.weight'
    for use_ema, source in ((True, ema), (False, plain)):
        model = ViTAEv2VSA(init_cfg=dict(type='Pretrained', checkpoint=str(path), use_ema=use_ema),
                           **backbone_kwargs(fx.kwargs))
        model.init_weights()
        assert torch.equal(model.state_dict()[key], source['layers.0.RC.PRM.convs.0.0.weight'])


def test_full_size_listing_converts_and_loads_strictly(key_listing):
    listing = key_listing('vitaev2_vsa_s.json')
    official = random_state_dict(listing['keys'])
    assert len(official) == 672
    # DDP-wrapped files (``module.`` prefix) convert the same way.
    converted = convert_vitaev2_vsa({'module.' + k: v for k, v in official.items()})
    model = image_classifier('s', 1000, 512)
    load_state_dict_strict(model, converted)
    assert torch.equal(model.state_dict()['head.fc.weight'], official['head.weight'])
    qkv = official['layers.2.NC.7.attn.qkv.weight']
    assert torch.equal(model.backbone.stages[2].normal[7].attn.qkv.weight, qkv.flatten(1))


def test_vitaev2_vsa_s_parameter_count():
    model = image_classifier('s', 1000, 512)
    assert sum(p.numel() for p in model.parameters()) == 19_773_300


def test_converter_rejects_other_checkpoints():
    with pytest.raises(KeyError, match='not a ViTAEv2-VSA'):
        convert_vitaev2_vsa({'layers.0.RC.PRM.convs.0.0.weight': torch.zeros(1),
                             'patch_embed.proj.weight': torch.zeros(1)})


def test_converter_cli(parity_fixture, tmp_path, monkeypatch):
    fx = parity_fixture('vsa_cls')
    out = tmp_path / 'vitaev2_vsa_windowlab.pth'
    tool = REPO / 'tools/model_converters/vitaev2_vsa2windowlab.py'
    monkeypatch.setattr(sys, 'argv', [str(tool), str(fx.path('official.pth')), str(out)])
    runpy.run_path(str(tool), run_name='__main__')
    saved = torch.load(out, weights_only=True)
    assert saved['meta']['ema'] is True
    ema = fx.load('official.pth')['state_dict_ema']
    assert torch.equal(saved['state_dict']['head.fc.weight'], ema['head.weight'])
    load_state_dict_strict(fixture_classifier(fx), saved['state_dict'])


TINY = dict(embed_dims=(8, 8, 16, 16), token_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1),
            rc_heads=(1, 2, 2, 2), nc_heads=(2, 2, 2, 4), rc_groups=(1, 2, 2, 4),
            nc_groups=(1, 2, 2, 4), wide_pcm=True)


@pytest.mark.parametrize('variant', ['cls', 'det'])
@pytest.mark.parametrize('hw', [(64, 64), (96, 160), (36, 52)])
def test_any_size_and_small_maps_are_finite(variant, hw):
    """Stage maps smaller than the window (e.g. 2x2) or of any side pad without NaN."""
    model = ViTAEv2VSA(arch=TINY, variant=variant)
    model.init_weights()
    for name, p in model.named_parameters():   # make windows move
        if 'sampling_' in name:
            p.data.normal_(0, 0.5)
    feats = model.eval()(torch.randn(1, 3, *hw))
    sides = [((hw[0] + 3) // 4, (hw[1] + 3) // 4)]
    for _ in range(3):
        sides.append(((sides[-1][0] + 1) // 2, (sides[-1][1] + 1) // 2))
    assert [tuple(f.shape[2:]) for f in feats] == sides
    assert [f.shape[1] for f in feats] == list(TINY['token_dims'])
    assert all(torch.isfinite(f).all() for f in feats)


def test_unsupported_side_has_a_clear_error():
    model = ViTAEv2VSA(arch=TINY)
    with pytest.raises(ValueError, match='multiple of 32'):
        model(torch.randn(1, 3, 65, 64))


def test_wide_pcm_and_gradients():
    model = ViTAEv2VSA(arch=TINY, drop_path_rate=0.1, out_indices=(3,))
    model.init_weights()
    pcm = model.stages[1].reduction.pcm
    assert pcm[0].out_channels == 2 * TINY['token_dims'][1]   # wide PCM: 2 x token dims
    model.train()
    model(torch.randn(2, 3, 64, 64))[0].square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads['stages.3.normal.0.attn.sampling_offsets.weight'].abs().sum() > 0


def test_frozen_stages():
    model = ViTAEv2VSA(arch=TINY, frozen_stages=2).train()
    assert not any(p.requires_grad for p in model.stages[:2].parameters())
    assert all(p.requires_grad for p in model.stages[2:].parameters())
    assert not model.stages[0].training and model.stages[2].training


def test_registered_for_every_task():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for registry in (CLS, DET, SEG):
        assert registry.get('ViTAEv2VSA') is ViTAEv2VSA


@pytest.mark.parametrize('arch,depths', [('48m', (2, 2, 11, 2)), ('b', (2, 2, 12, 2))])
def test_released_archs_build(arch, depths):
    model = ViTAEv2VSA(arch=arch)
    assert tuple(len(s.normal) for s in model.stages) == depths
    assert model.stages[0].reduction.pcm[0].out_channels == 2 * model.num_features[0]


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ViTAEv2VSA(arch=TINY, drop_path_rate=0.0, out_indices=(3,))
    ckpt = ViTAEv2VSA(arch=TINY, drop_path_rate=0.0, out_indices=(3,), with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    grads = []
    for model in (plain, ckpt):
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
        model(x)[0].square().mean().backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
