"""tools/analysis_tools: FLOPs as the official code counts them, and the benchmark's table row."""
import re
import subprocess
import sys
from pathlib import Path

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
