"""WLSwinTransformer on inputs the official codes do not all handle."""
import pytest
import torch

from windowlab.launch import build_in_scope
from windowlab.models.layers import WindowMSA

MINI = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


@pytest.mark.parametrize('adaptive', [False, True])
@pytest.mark.parametrize('size', [(20, 20), (33, 70), (4, 4)])
def test_any_image_size_works(size, adaptive):
    """Maps smaller than a window are zero-padded (detection rule) or use one smaller window
    (classification rule); odd sides are padded before patch merging. No NaN, right shapes."""
    model = build_in_scope(dict(type='WLSwinTransformer', arch=MINI,
                                attn_cfg=dict(type='WindowMSA', adaptive_window=adaptive)), 'mmdet')
    x = torch.randn(1, 3, *size, requires_grad=True)
    feats = model(x)
    h, w = -(-size[0] // 4), -(-size[1] // 4)
    for i, f in enumerate(feats):
        assert f.shape == (1, 16 * 2 ** i, h, w) and torch.isfinite(f).all()
        h, w = -(-h // 2), -(-w // 2)
    # (a plain sum of LayerNorm outputs is constant: weigh the features randomly)
    sum((f * torch.randn_like(f)).sum() for f in feats).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_shifted_windows_only_mix_tokens_of_the_same_region():
    """With the -100 mask a token's output does not depend on tokens that the cyclic shift
    brought from the other side of the map."""
    torch.manual_seed(0)
    attn = WindowMSA(8, 2, window_size=4, shift_size=2).eval()
    x = torch.randn(1, 8 * 8, 8)
    y = torch.randn(1, 8 * 8, 8)
    # token (0, 0) sits in the top-left region; rows 6-7 and columns 6-7 wrap around next to it
    y.view(1, 8, 8, 8)[:, :6, :6] = x.view(1, 8, 8, 8)[:, :6, :6]
    with torch.no_grad():
        assert torch.allclose(attn(x, (8, 8))[0, 0], attn(y, (8, 8))[0, 0], atol=1e-5)
