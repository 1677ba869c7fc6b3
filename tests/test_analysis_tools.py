"""tools/analysis_tools: FLOPs as the official code counts them, and the benchmark's table row."""
import re
import subprocess
import sys
from pathlib import Path

import torch
from mmengine.config import Config

import windowlab  # noqa: F401
from windowlab.analysis import count_params_flops

REPO = Path(__file__).resolve().parents[1]


def test_swin_t_params_and_flops_match_the_official_count():
    cfg = Config.fromfile(REPO / 'configs/swin/swin-t-p4-w7_16xb64_in1k.py')
    params, flops = count_params_flops(cfg, (224, 224))
    assert params == 28_288_354
    assert round(flops / 1e9, 2) == 4.49


def test_get_flops_counts_a_submodule_of_a_detector():
    cfg = Config.fromfile(REPO / 'configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py')
    params, flops = count_params_flops(cfg, (224, 224), module='backbone')
    assert params == 27_520_698  # mmdet's Swin-T backbone (keys/mmdet_swin_t_backbone.json)
    assert 4.0e9 < flops < 4.6e9


def test_fused_attention_counts_both_matmuls():
    """``q k^T`` and ``P v`` of a fused attention: ``B h L S (E + Ev)`` multiply-adds."""
    from windowlab.analysis import flop_analyzer
    from windowlab.models.layers.attention import attend

    class Attend(torch.nn.Module):
        def forward(self, q, k, v):
            return attend(q, k, v)

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    assert flop_analyzer(Attend(), (q, k, v)).total() == 2 * 3 * 5 * 7 * (4 + 6)


def test_biformer_flops_are_the_same_for_the_fast_and_the_released_bra():
    """The fast BRA (routed blocks through the fused attention) costs what the released gather
    costs: 4.47 GFLOPs for BiFormer-S at 224 (the fast kernel used to count 4.19)."""
    flops = {}
    for impl in ('fast', 'gather'):
        cfg = Config.fromfile(REPO / 'configs/biformer/biformer-s_16xb128_in1k.py')
        cfg.model.backbone.attn_cfg = dict(type='BiLevelRoutingAttention', impl=impl)
        flops[impl] = count_params_flops(cfg, (224, 224))[1]
    assert flops['fast'] == flops['gather']
    assert round(flops['fast'] / 1e9, 2) == 4.47


def test_benchmark_prints_a_markdown_row():
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark.py', 'configs/swin/swin-mini-p4-w7_toy-in.py',
         '--shape', '64', '64', '--batch', '2', '--warmup', '1', '--repeats', '2', '--threads', '1'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    row = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r'\| swin-mini-p4-w7_toy-in \| 64x64 \| 2 \| ([\d.]+) \| ([\d.]+) \| (\d+) \| (\d+) \|', row)
    assert match, row
    assert float(match.group(1)) > 0 and float(match.group(2)) > 0
