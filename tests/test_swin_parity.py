"""WLSwinTransformer against the official Swin codes (fixtures swin_cls, swin_det).

Every size comes from the fixture's ``spec.json`` (official constructor kwargs)."""
import torch

import windowlab  # noqa: F401
from windowlab.converters import load_state_dict_strict, unwrap_state_dict
from windowlab.converters.swin import convert_swin, convert_swin_classifier
from windowlab.launch import build_in_scope

from conftest import assert_control


def swin_kwargs(kwargs):
    """Official ``SwinTransformer`` kwargs -> WLSwinTransformer kwargs."""
    return dict(arch=dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depths'],
                          num_heads=kwargs['num_heads']),
                in_channels=kwargs['in_chans'], patch_size=kwargs['patch_size'],
                window_size=kwargs['window_size'], mlp_ratio=kwargs['mlp_ratio'],
                qkv_bias=kwargs['qkv_bias'])


def build_classifier(fx):
    kwargs = fx.kwargs
    width = kwargs['embed_dim'] * 2 ** (len(kwargs['depths']) - 1)
    return build_in_scope(dict(
        type='ImageClassifier',
        backbone=dict(type='WLSwinTransformer', out_indices=(3,),
                      attn_cfg=dict(type='WindowMSA', adaptive_window=True), **swin_kwargs(kwargs)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=kwargs['num_classes'], in_channels=width)),
        'mmpretrain')


def build_backbone(fx, **kwargs):
    return build_in_scope(dict(type='WLSwinTransformer', out_indices=fx.kwargs['out_indices'],
                               **swin_kwargs(fx.kwargs), **kwargs), 'mmdet')


def max_diff(a, b):
    return (a - b).abs().max().item()


def classifier_logits(fx, state_dict, tweak=None):
    model = build_classifier(fx).eval()
    load_state_dict_strict(model, state_dict)
    if tweak:
        tweak(model)
    with torch.no_grad():
        return model(fx.load('input.pt'), mode='tensor')


def official_classifier_weights(fx):
    return convert_swin_classifier(unwrap_state_dict(fx.load('official.pth')))


def test_swin_cls_logits_match_official(parity_fixture):
    fx = parity_fixture('swin_cls')
    logits = classifier_logits(fx, official_classifier_weights(fx))
    expected = fx.load('expected.pt')['logits']
    assert logits.shape == expected.shape == (fx.spec['input_shape'][0], fx.kwargs['num_classes'])
    assert max_diff(logits, expected) < fx.atol   # measured 1.2e-7 (compact), 7.2e-7 (full)


def test_swin_cls_needs_adaptive_window(parity_fixture):
    """The classification quirk matters: the detection rule (stage 4 shifted with the -100
    mask) gives other logits."""
    fx = parity_fixture('swin_cls')

    def detection_rule(model):
        for block in model.backbone.stages[3].blocks:
            block.attn.adaptive_window = False

    logits = classifier_logits(fx, official_classifier_weights(fx), detection_rule)
    assert_control(fx, 'stage4_odd_block_shifted_with_mask',
                   max_diff(logits, fx.load('expected.pt')['logits']))


def test_swin_cls_needs_the_official_patch_merging_order(parity_fixture):
    """Concatenating the 2x2 neighbours in unfold's (row-major) order (0,0), (0,1), (1,0),
    (1,1) instead of Swin's (0,0), (1,0), (0,1), (1,1), with the official weights, moves the
    logits. Such a model equals ours with the middle two channel blocks of every patch
    merging's norm and reduction swapped."""
    fx = parity_fixture('swin_cls')
    sd = official_classifier_weights(fx)
    for key in [k for k in sd if '.downsample.' in k]:
        blocks = sd[key].chunk(4, dim=-1)
        sd[key] = torch.cat([blocks[0], blocks[2], blocks[1], blocks[3]], dim=-1)
    logits = classifier_logits(fx, sd)
    assert_control(fx, 'patch_merging_unfold_order',
                   max_diff(logits, fx.load('expected.pt')['logits']))


def det_features(fx, tweak=None):
    model = build_backbone(fx).eval()
    load_state_dict_strict(model, convert_swin(unwrap_state_dict(fx.load('official_det.pth'))))
    if tweak:
        tweak(model)
    with torch.no_grad():
        return model(fx.load('input.pt'))


def test_swin_det_features_match_official(parity_fixture):
    fx = parity_fixture('swin_det')
    feats = det_features(fx)
    expected = fx.load('expected.pt')
    assert [tuple(f.shape) for f in feats] == [tuple(expected[f'feat{i}'].shape) for i in range(4)]
    for i, f in enumerate(feats):   # measured 0 (compact), <= 3.6e-6 (full)
        assert max_diff(f, expected[f'feat{i}']) < fx.atol, f'feat{i}'


def test_swin_det_shifts_the_last_stage_whatever_its_size(parity_fixture):
    """The detection code shifts odd blocks even on maps smaller than the window."""
    fx = parity_fixture('swin_det')

    def no_shift(model):
        model.stages[3].blocks[1].attn.shift_size = 0

    expected = fx.load('expected.pt')
    moved = {f'feat{i}': max_diff(f, expected[f'feat{i}'])
             for i, f in enumerate(det_features(fx, no_shift))}
    assert_control(fx, 'stage4_odd_block_not_shifted', moved)


def test_swin_det_pretrained_init_from_official_classifier(parity_fixture):
    """init_cfg Pretrained takes the official classification file as it is."""
    fx = parity_fixture('swin_det')
    model = build_backbone(fx, init_cfg=dict(type='Pretrained',
                                             checkpoint=str(fx.path('official.pth'))))
    model.init_weights()
    model.eval()
    expected = fx.load('expected.pt')
    with torch.no_grad():
        feats = model(fx.load('input.pt'))
    for i, f in enumerate(feats):
        assert max_diff(f, expected[f'pretrained_feat{i}']) < fx.atol, f'pretrained_feat{i}'
