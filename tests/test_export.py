"""Deployment: every backbone family and the VWHead export to ONNX with dynamic H, W, and the
file onnxruntime runs agrees with eager PyTorch at the export size and at another size.

The models are tiny (a few channels, one or two blocks per stage) and the inputs small: a
dynamic ``torch.export`` plus the ONNX conversion is what costs time here.
"""
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch
from torch import nn

from windowlab import deployment
from windowlab.deployment import ExportError, export_verified


def randomize_(model, std=0.2):
    """Random non-zero weights everywhere (VSA's zero-initialised window regression
    included), so that every branch of the model influences the output."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model.eval()


def swin():
    from windowlab.models.backbones.swin import WLSwinTransformer
    # window 3 on 16x16 / 8x8 maps: padding, cyclic shift and its mask, patch merging
    return WLSwinTransformer(arch=dict(embed_dims=8, depths=(2, 1), num_heads=(1, 2)),
                             window_size=3, out_indices=(0, 1))


def swin_vsa():
    from windowlab.models.backbones.swin import WLSwinTransformer
    from windowlab.projects.vsa import vsa_attention  # noqa: F401
    return WLSwinTransformer(arch=dict(embed_dims=8, depths=(1, 1), num_heads=(2, 2)),
                             window_size=3, shift_windows=False, out_indices=(0, 1),
                             attn_cfg=dict(type='VSAWindowAttention', pad_mode='symmetric'))


def vitaev2_vsa():
    from windowlab.projects.vsa.vitaev2_vsa import ViTAEv2VSA
    arch = dict(embed_dims=(8, 8), token_dims=(8, 8), depths=(0, 1), rc_heads=(1, 1),
                nc_heads=(1, 1), rc_groups=(1, 1), nc_groups=(1, 1), wide_pcm=False)
    return ViTAEv2VSA(arch=arch, window_size=3, variant='det', strides=(4, 2),
                      kernel_sizes=(7, 3), dilations=((1, 2), (1, 2)), out_indices=(0, 1))


def biformer():
    from windowlab.projects.biformer.biformer import BiFormer
    # default impl='fast'; auto_pad with n_win=3 pads every stage map
    return BiFormer(arch=dict(embed_dims=(8, 8, 8, 8), depths=(1, 1, 0, 1), num_heads=(1, 1, 1, 1)),
                    n_win=3, topks=(2, 2, 2, -1), auto_pad=True, out_indices=(0, 1, 3),
                    out_norm_cfg=dict(type='LN2d'))


def polyvit():
    from windowlab.projects.shift_equivariant.poly_vit import PolyViT
    return PolyViT(arch=dict(embed_dims=8, depth=1, num_heads=1), patch_size=8,
                   out_type='featmap')


def polytwins():
    from windowlab.projects.shift_equivariant.poly_twins import PolyTwins
    arch = dict(embed_dims=[8, 8], num_heads=[1, 1], depths=[2, 2], window_sizes=[2, 2],
                sr_ratios=[2, 1])
    return PolyTwins(arch=arch, out_indices=(0, 1))


def polyswin():
    from windowlab.projects.shift_equivariant.poly_swin import PolySwin
    return PolySwin(arch=dict(embed_dims=8, depths=(2, 2), num_heads=(1, 1)), window_size=2,
                    out_indices=(0, 1), roll_back=True)


class VWHeadOnImage(nn.Module):
    """Four strided convs (strides 4, 8, 16, 32) feeding the VWFormer head."""

    def __init__(self):
        super().__init__()
        from windowlab.projects.vwformer.vw_head import VWHead
        self.levels = nn.ModuleList(nn.Conv2d(3, 8, s, stride=s) for s in (4, 8, 16, 32))
        self.head = VWHead(in_channels=[8] * 4, in_index=[0, 1, 2, 3], channels=64,
                           num_classes=3, norm_cfg=dict(type='BN'))

    def forward(self, x):
        return self.head([level(x) for level in self.levels])


FAMILIES = dict(swin=swin, swin_vsa=swin_vsa, vitaev2_vsa=vitaev2_vsa, biformer=biformer,
                polyvit=polyvit, polytwins=polytwins, polyswin=polyswin, vwhead=VWHeadOnImage)
# 128: at 64 the VWA windows of the 8x8 stride-8 map are 1 pixel, a size tracing specialises
EXPORT_SIZE = dict(vwhead=128)


@pytest.fixture
def two_sizes(monkeypatch):
    """Verify at the export size and one other (non-square) size only."""
    monkeypatch.setattr(deployment, 'verify_sizes',
                        lambda shape, d, dynamic: [shape, (shape[0] + d, shape[1] + 2 * d)])


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_dynamic_onnx_matches_eager_at_two_sizes(family, tmp_path, two_sizes):
    torch.manual_seed(0)
    model = randomize_(FAMILIES[family]())
    out = tmp_path / f'{family}.onnx'
    size = EXPORT_SIZE.get(family, 64)
    lines = []
    result = export_verified(model, str(out), (size, size), 'onnx', dynamic=True, divisor=32,
                             log=lines.append)
    assert out.is_file() and result['sizes'] == [(size, size), (size + 32, size + 64)]
    assert result['max_diff'] < 1e-4, lines
    # the file itself, read back, on a third size
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, size + 64, size + 32)
    with torch.no_grad():
        expected = deployment.FlatOutputs(model)(x)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for e, g in zip(expected, got):
        assert g.shape == tuple(e.shape)
        assert (torch.from_numpy(g) - e).abs().max().item() < 1e-4


class ExportsSomethingElse(nn.Module):
    """Computes ``x + 1`` in eager mode but ``x`` in an export: a wrong file."""

    def forward(self, x):
        return x if torch.compiler.is_exporting() else x + 1


@pytest.mark.parametrize('fmt', ['onnx', 'torch.export'])
def test_a_file_that_disagrees_with_eager_is_an_error_and_not_written(fmt, tmp_path):
    out = tmp_path / 'wrong.onnx'
    with pytest.raises(ExportError, match=r'differs from eager PyTorch by 1 '):
        export_verified(ExportsSomethingElse(), str(out), (32, 32), fmt)
    assert list(tmp_path.iterdir()) == []


class SizeSpecialised(nn.Module):
    """A branch on the input size: one graph cannot serve every size."""

    def forward(self, x):
        return x * 2 if x.shape[-1] > 64 else x


def test_dynamic_export_valid_only_for_some_sizes_is_refused(tmp_path):
    with pytest.raises(ExportError, match=r'not valid for every size.*W in \[96, 8192\]'):
        export_verified(SizeSpecialised(), str(tmp_path / 'm.onnx'), (96, 96), 'onnx',
                        dynamic=True, divisor=32)
    assert list(tmp_path.iterdir()) == []
    # restricting the sizes to those of the traced branch makes it exportable
    export_verified(SizeSpecialised(), str(tmp_path / 'm.onnx'), (96, 96), 'onnx',
                    dynamic=True, divisor=32, min_shape=(96, 96), log=lambda s: None)


REPO = Path(__file__).resolve().parents[1]


def test_cli_exports_detector_backbone_and_neck_from_a_checkpoint(tmp_path):
    """tools/deployment/export.py on a Mask R-CNN config: backbone + FPN, loaded from a
    whole-model checkpoint, dynamic ONNX verified at three sizes. (128: at 64 the FPN's
    stride-64 level would be 1 pixel high, a size tracing specialises.)"""
    from windowlab import launch
    config = str(REPO / 'configs/biformer/mask-rcnn_biformer-mini_fpn_toy-coco.py')
    options = ['model.backbone.arch.depths=[1,1,0,1]', 'model.backbone.n_win=2']
    cfg = launch.load_config(config, {k: eval(v) for k, v in (o.split('=') for o in options)})
    torch.manual_seed(0)
    model = randomize_(launch.build_model(cfg))
    ckpt = tmp_path / 'det.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/deployment/export.py'), config, str(ckpt),
         '--format', 'onnx', '--shape', '128', '160', '--dynamic', '--cfg-options', *options],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'verified 128x160' in result.stdout and 'verified 192x192' in result.stdout
    session = onnxruntime.InferenceSession(str(tmp_path / 'det.onnx'),
                                           providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, 224, 160)
    with torch.no_grad():
        expected = model.extract_feat(x)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert len(got) == len(expected) == 5  # the FPN levels
    for e, g in zip(expected, got):
        assert (torch.from_numpy(g) - e).abs().max().item() < 1e-4
