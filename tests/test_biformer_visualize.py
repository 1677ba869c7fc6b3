"""tools/analysis_tools/visualize_biformer_routing.py draws a query region and its routes."""
import runpy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO

import windowlab.projects.biformer  # noqa: F401
from windowlab.projects.biformer import BiFormer

TOOL = REPO / 'tools/analysis_tools/visualize_biformer_routing.py'
TINY = dict(embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 4))


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(str(TOOL))


def test_region_geometry(tool):
    # a 13x19 stage-1 map (stride 8) padded to 16x20 for n_win 4: regions of 4x5 cells
    region_hw = tool['region_geometry']((13, 19), 4)
    assert region_hw == (4, 5)
    assert tool['query_region']((75, 50), 8, region_hw, 4) == 5
    assert tool['query_region']((10_000, 10_000), 8, region_hw, 4) == 15  # clamped
    assert tool['region_box'](5, 4, region_hw, 8) == (40, 32, 80, 64)


def _write_inputs(tmp_path):
    import cv2
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "default_scope = 'mmseg'\n"
        f"model = dict(type='EncoderDecoder', backbone=dict(type='BiFormer', arch={TINY!r}, "
        "n_win=4, topks=(1, 3, 4, -1), auto_pad=True, out_indices=(0, 1, 2, 3), "
        "out_norm_cfg=dict(type='LN2d')), decode_head=dict(type='FCNHead', in_channels=128, "
        "in_index=3, channels=8, num_convs=1, num_classes=3))\n")
    torch.manual_seed(0)
    backbone = BiFormer(arch=TINY, n_win=4, topks=(1, 3, 4, -1), auto_pad=True,
                        out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='LN2d'))
    ckpt = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.state_dict().items()}},
               ckpt)
    rng = np.random.default_rng(0)
    image = (rng.random((100, 150, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'img.png'), image)
    return cfg, ckpt, backbone


def test_tool_draws_the_routed_regions(tool, tmp_path):
    from PIL import Image
    cfg, ckpt, backbone = _write_inputs(tmp_path)
    out = tmp_path / 'routing.png'
    query, routed = tool['main']([str(cfg), str(ckpt), str(tmp_path / 'img.png'), '--out',
                                  str(out), '--stage', '1'])
    assert query == 5 and len(routed) == 3

    # independent check: top-3 of the region-mean scores of the layer's (padded) input
    captured = {}
    attn = backbone.stages[1][0].attn
    handle = attn.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
    import mmcv
    img = mmcv.imread(str(tmp_path / 'img.png'), channel_order='rgb')
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None]
    x = (x - torch.tensor((123.675, 116.28, 103.53)).view(3, 1, 1)) / torch.tensor(
        (58.395, 57.12, 57.375)).view(3, 1, 1)
    with torch.no_grad():
        backbone.eval()(x)
        handle.remove()
        feat = F.pad(captured['x'], (0, 0, 0, 1, 0, 3))  # 13x19 -> 16x20
        q, k, _ = attn.qkv(feat).split([32, 32, 32], -1)
        means = [t.view(1, 4, 4, 4, 5, 32).mean((2, 4)).reshape(16, 32) for t in (q, k)]
        scores = means[0][query] @ means[1].T
    assert sorted(routed) == sorted(scores.topk(3).indices.tolist())

    picture = np.asarray(Image.open(out).convert('RGB')).astype(int)
    assert picture.shape == (100, 150, 3)
    red = (picture == (255, 40, 40)).all(-1)
    green = (picture == (40, 230, 40)).all(-1)
    ys, xs = np.nonzero(red)  # the query box: region 5 = pixels x 40..80, y 32..64
    assert red.sum() > 50 and xs.min() >= 40 and xs.max() < 80 and ys.min() >= 32 and ys.max() < 64
    for r in routed:  # a green outline inside every routed region
        row, col = divmod(r, 4)
        box = green[row * 32:(row + 1) * 32, col * 40:(col + 1) * 40]
        assert box.sum() > 50, r


def test_tool_rejects_the_global_stage(tool, tmp_path):
    _, _, backbone = _write_inputs(tmp_path)
    with pytest.raises(ValueError, match='global attention'):
        tool['find_bra_layer'](backbone, 3, -1)
    with pytest.raises(ValueError, match='out of range'):
        tool['find_bra_layer'](backbone, 1, 3)
