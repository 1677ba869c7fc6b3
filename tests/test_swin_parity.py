"""WLSwinTransformer against the official Swin codes (../shared/fixtures/swin_cls, swin_det)."""
import torch

import windowlab  # noqa: F401
from windowlab.converters import load_state_dict_strict, unwrap_state_dict
from windowlab.converters.swin import convert_swin, convert_swin_classifier
from windowlab.launch import build_in_scope

FIXTURE_ARCH = dict(embed_dims=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


def build_classifier(num_classes=10):
    return build_in_scope(dict(
        type='ImageClassifier',
        backbone=dict(type='WLSwinTransformer', arch=FIXTURE_ARCH, out_indices=(3,),
                      attn_cfg=dict(type='WindowMSA', adaptive_window=True)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=96)), 'mmpretrain')


def build_backbone(**kwargs):
    return build_in_scope(dict(type='WLSwinTransformer', arch=FIXTURE_ARCH, **kwargs), 'mmdet')


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_swin_cls_logits_match_official(parity_fixture):
    fx = parity_fixture('swin_cls')
    model = build_classifier().eval()
    sd = convert_swin_classifier(unwrap_state_dict(fx.load('official.pth')))
    load_state_dict_strict(model, sd)
    with torch.no_grad():
        logits = model(fx.load('input.pt'), mode='tensor')
    assert max_diff(logits, fx.load('expected.pt')['logits']) < fx.atol


def test_swin_cls_needs_adaptive_window(parity_fixture):
    """The classification quirk matters: the detection rule gives different logits."""
    fx = parity_fixture('swin_cls')
    model = build_classifier().eval()
    for block in model.backbone.stages[3].blocks:
        block.attn.adaptive_window = False
    load_state_dict_strict(model, convert_swin_classifier(unwrap_state_dict(fx.load('official.pth'))))
    with torch.no_grad():
        logits = model(fx.load('input.pt'), mode='tensor')
    assert max_diff(logits, fx.load('expected.pt')['logits']) > 10 * fx.atol


def test_swin_det_features_match_official(parity_fixture):
    fx = parity_fixture('swin_det')
    model = build_backbone().eval()
    sd = convert_swin(unwrap_state_dict(fx.load('official_det.pth')))
    load_state_dict_strict(model, sd)
    expected = fx.load('expected.pt')
    with torch.no_grad():
        feats = model(fx.load('input.pt'))
    assert [tuple(f.shape) for f in feats] == [tuple(expected[f'feat{i}'].shape) for i in range(4)]
    for i, f in enumerate(feats):
        assert max_diff(f, expected[f'feat{i}']) < fx.atol, f'feat{i}'


def test_swin_det_pretrained_init_from_official_classifier(parity_fixture):
    """init_cfg Pretrained takes the official classification file as it is."""
    fx = parity_fixture('swin_det')
    model = build_backbone(init_cfg=dict(type='Pretrained', checkpoint=str(fx.path('official.pth'))))
    model.init_weights()
    model.eval()
    expected = fx.load('expected.pt')
    with torch.no_grad():
        feats = model(fx.load('input.pt'))
    for i, f in enumerate(feats):
        assert max_diff(f, expected[f'pretrained_feat{i}']) < fx.atol, f'pretrained_feat{i}'
