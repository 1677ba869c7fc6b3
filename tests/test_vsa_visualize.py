"""tools/analysis_tools/visualize_vsa_windows.py draws default and learned VSA windows."""
import runpy

import numpy as np
import pytest
import torch
from conftest import REPO

import windowlab.projects.vsa  # noqa: F401
from windowlab.projects.vsa import ViTAEv2VSA, VSAWindowAttention

TOOL = REPO / 'tools/analysis_tools/visualize_vsa_windows.py'
TINY = dict(embed_dims=(8, 8, 16, 16), token_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1),
            rc_heads=(1, 2, 2, 2), nc_heads=(2, 2, 2, 4), rc_groups=(1, 2, 2, 4),
            nc_groups=(1, 2, 2, 4), wide_pcm=False)


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(str(TOOL))


def test_boxes_follow_scale_and_offset(tool):
    attn = VSAWindowAttention(embed_dims=8, num_heads=2, window_size=7).eval()
    x = torch.randn(1, 14 * 21, 8)
    _, grid, pads = attn(x, (14, 21), return_windows=True)
    default, learned = tool['window_boxes'](grid, pads, 7, head=1)
    assert default.shape == (6, 4)
    assert torch.allclose(default, learned, atol=1e-4)      # zero regression = default
    assert default[1].tolist() == [7, 0, 14, 7]
    with torch.no_grad():
        attn.sampling_scales.bias.fill_(1.0)                 # windows twice as large
    _, grid, pads = attn(x, (14, 21), return_windows=True)
    default, learned = tool['window_boxes'](grid, pads, 7, head=0)
    sizes = learned[:, 2:] - learned[:, :2]
    assert torch.allclose(sizes, torch.full_like(sizes, 14.0), atol=1e-3)
    centres = (learned[:, :2] + learned[:, 2:]) / 2
    assert torch.allclose(centres, (default[:, :2] + default[:, 2:]) / 2, atol=1e-3)


def test_tool_writes_a_picture(tool, tmp_path, monkeypatch):
    import cv2
    from PIL import Image
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "default_scope = 'mmpretrain'\n"
        f"model = dict(type='ImageClassifier', backbone=dict(type='ViTAEv2VSA', arch={TINY!r}, "
        "out_indices=(3,)), neck=dict(type='GlobalAveragePooling'), head=dict("
        "type='LinearClsHead', num_classes=10, in_channels=32))\n")
    backbone = ViTAEv2VSA(arch=TINY)
    torch.manual_seed(0)
    for name, p in backbone.named_parameters():
        if '.attn.sampling_' in name:
            p.data.normal_(0, 0.5)
    ckpt = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.state_dict().items()}},
               ckpt)
    image = np.full((100, 150, 3), 60, np.uint8)
    cv2.imwrite(str(tmp_path / 'img.png'), image)
    out = tmp_path / 'windows.png'
    tool['main']([str(cfg), str(ckpt), str(tmp_path / 'img.png'), '--out', str(out),
                  '--stage', '1', '--head', '1'])
    picture = np.asarray(Image.open(out).convert('RGB'))
    assert picture.shape == (128, 160, 3)      # padded to a multiple of 32
    white = (picture == 255).all(-1)           # default window grid
    coloured = (picture.max(-1) == 255) & ~white
    assert white.sum() > 100 and coloured.sum() > 100
    # Stage 1: 16x20 map (stride 8), windows of 7 cells = 56 pixels; the default grid's
    # left edges are at x = 0 and 56 (the learned boxes may cover parts of it).
    assert white[:, 56].mean() > 0.3 and white[:, 30].mean() < 0.1


def test_tool_rejects_a_bad_head(tool, tmp_path):
    backbone = ViTAEv2VSA(arch=TINY)
    with pytest.raises(ValueError, match='VSA layers'):
        tool['find_vsa_layer'](backbone, 1, 5)
