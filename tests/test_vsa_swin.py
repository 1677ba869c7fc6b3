"""Swin-VSA: windowlab's Swin backbone with VSAWindowAttention plugged in by config."""
import pytest
import torch

import windowlab.projects.vsa  # noqa: F401  (registers VSAWindowAttention)

swin = pytest.importorskip('windowlab.models.backbones.swin')

ARCH = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def swin_vsa(**attn):
    return swin.WLSwinTransformer(arch=ARCH, shift_windows=False,
                                  attn_cfg=dict(type='VSAWindowAttention', **attn))


def test_zero_regression_swin_vsa_equals_unshifted_swin():
    """With zero regression and no CPE, Swin-VSA is Swin without shifts (map sides 56/28/14/7
    are whole windows, so the padding conventions do not differ)."""
    torch.manual_seed(0)
    plain = swin.WLSwinTransformer(arch=ARCH, shift_windows=False).eval()
    vsa = swin_vsa().eval()
    missing, unexpected = vsa.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert missing and all('.attn.sampling_' in k for k in missing)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        diffs = [(a - b).abs().max().item() for a, b in zip(vsa(x), plain(x))]
    assert max(diffs) < 1e-4, diffs


def test_swin_vsa_any_size_trains():
    model = swin_vsa(use_cpe=True)
    model.init_weights()
    for name, p in model.named_parameters():   # windows really move and resize
        if '.attn.sampling_' in name:
            p.data.normal_(0, 0.3)
    model.train()
    feats = model(torch.randn(2, 3, 100, 130))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 25, 33), (32, 13, 17), (64, 7, 9),
                                                   (128, 4, 5)]
    assert all(torch.isfinite(f).all() for f in feats)
    sum(f.square().mean() for f in feats).backward()
    cpe = model.stages[3].blocks[1].attn.cpe.weight.grad
    offsets = model.stages[3].blocks[1].attn.sampling_offsets.weight.grad
    assert cpe.abs().sum() > 0 and offsets.abs().sum() > 0


def test_shifted_windows_are_refused_with_the_fix():
    with pytest.raises(ValueError, match='shift_windows=False'):
        swin.WLSwinTransformer(arch=ARCH, attn_cfg=dict(type='VSAWindowAttention'))


def test_detection_backbone_loads_a_swin_vsa_classifier(tmp_path):
    """The Swin-VSA detection/segmentation configs start from a trained Swin-VSA classifier."""
    cls_backbone = swin_vsa(use_cpe=True)
    for p in cls_backbone.parameters():
        p.data.normal_()
    state = {'backbone.' + k: v for k, v in cls_backbone.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 128)
    path = tmp_path / 'swin_vsa_cls.pth'
    torch.save({'state_dict': state}, path)
    det = swin.WLSwinTransformer(
        arch=ARCH, shift_windows=False, attn_cfg=dict(type='VSAWindowAttention', use_cpe=True),
        init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    det.init_weights()
    key = 'stages.2.blocks.1.attn.sampling_scales.weight'
    assert torch.equal(det.state_dict()[key], cls_backbone.state_dict()[key])
