"""Circular-shift consistency: the metric, plain baselines vs the Poly models on random
weights, the segmentation variant, and the analysis tool end to end on toy-in."""
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from test_shift_equivariant import (TWINS_TINY, VIT_TINY, classifier, polytwins_classifier,
                                    polyvit_classifier, randomize_)
from test_shift_equivariant_swin import SWIN_TINY, polyswin_classifier

import mmseg.models  # noqa: F401  (the plain Twins baseline is mmseg's SVT)
import windowlab.projects.shift_equivariant  # noqa: F401
from windowlab.evaluation.shift_consistency import (PROTOCOLS, classification_agreement,
                                                    sample_shifts, segmentation_agreement)


def plain_vit():
    return classifier(dict(type='VisionTransformer', img_size=96, patch_size=16,
                           arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                     feedforward_channels=256)), 10, 64)


def plain_swin():
    return classifier(dict(type='WLSwinTransformer', arch=SWIN_TINY, out_indices=(3,),
                           attn_cfg=dict(type='WindowMSA', adaptive_window=True)),
                      10, 128, pool=True)


def plain_twins():
    four = dict(embed_dims=TWINS_TINY['embed_dims'], num_heads=TWINS_TINY['num_heads'],
                depths=TWINS_TINY['depths'], mlp_ratios=[4] * 4, patch_sizes=[4, 2, 2, 2],
                strides=[4, 2, 2, 2], windiow_sizes=[7] * 4, sr_ratios=[8, 4, 2, 1])
    return classifier(dict(type='mmseg.SVT', norm_after_stage=True, out_indices=(3,), **four),
                      10, 128, pool=True)


@pytest.mark.parametrize('name,plain,poly,size', [
    ('vit', plain_vit, lambda: polyvit_classifier(VIT_TINY, patch_size=16), 96),
    ('swin', plain_swin, polyswin_classifier, 224),
    ('twins', plain_twins, polytwins_classifier, 224),
])
def test_baselines_are_inconsistent_poly_models_are_not(name, plain, poly, size):
    images = torch.randn(16, 3, size, size, generator=torch.Generator().manual_seed(0))
    scores = {}
    for kind, build in (('plain', plain), ('poly', poly)):
        model = randomize_(build(), seed=1)
        agree = classification_agreement(model, images, PROTOCOLS['paper'],
                                         torch.Generator().manual_seed(1))
        scores[kind] = agree.float().mean().item()
    assert scores['poly'] == 1.0, scores
    assert scores['plain'] < 0.95, scores  # measured: vit 0.94, swin 0.62, twins 0.62


def test_sample_shifts_range_and_errors():
    shifts = sample_shifts(1000, (-32, 32), torch.Generator().manual_seed(0))
    assert shifts.min() == -32 and shifts.max() == 32 and shifts.shape == (1000, 2)
    with pytest.raises(ValueError, match='low <= high'):
        sample_shifts(2, (3, 1))


def test_segmentation_agreement_measures_unshifted_pixels():
    torch.manual_seed(0)
    images = torch.randn(4, 3, 32, 48)
    weight = torch.randn(5, 3, 5, 5)
    circular = lambda t: F.conv2d(F.pad(t, (2, 2, 2, 2), mode='circular'), weight)  # noqa: E731
    zero_padded = lambda t: F.conv2d(t, weight, padding=2)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    assert torch.equal(segmentation_agreement(circular, images, (-32, 32), g), torch.ones(4))
    zero = segmentation_agreement(zero_padded, images, (-32, 32), g)
    assert zero.shape == (4,) and 0.5 < zero.min() and zero.max() < 1.0


def test_consistency_tool_runs_on_toy_data(tmp_path):
    from mmengine.config import Config
    from test_shift_equivariant import build_model

    from windowlab.datasets.toy import make_toy_data
    root = make_toy_data(str(tmp_path / 'data'), ['toy-in'])['toy-in']
    config = REPO / 'configs/shift_equivariant/polyvit-mini-p8_toy-in.py'
    model = randomize_(build_model(Config.fromfile(config).model), seed=1)
    ckpt = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/shift_consistency.py'), str(config),
         str(ckpt), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = dict(re.findall(r'(shift_\w+/consistency): ([\d.]+)', out.stdout))
    assert found == {'shift_paper/consistency': '100.00', 'shift_aps/consistency': '100.00'}
    assert 'accuracy/top1' in out.stdout
