"""tools/analysis_tools/device_check.py: every family, fp32 and autocast, against float64 -- run
on the CPU at tiny size, in an interpreter without mmcv, mmdet, mmseg and mmpretrain."""
import importlib.util

import pytest
import torch

from conftest import REPO
from torch_only import run_without_mm

SCRIPT = REPO / 'tools' / 'analysis_tools' / 'device_check.py'
FAMILIES = ('Swin-T', 'Swin-VSA-T', 'ViTAEv2-VSA-S', 'BiFormer-S cls', 'BiFormer-S dense',
            'PolyViT-S', 'PolyTwins-S', 'PolySwin-T', 'VWHead (Swin-T maps)')


@pytest.fixture(scope='module')
def device_check():
    spec = importlib.util.spec_from_file_location('device_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(stdout):
    """The Markdown table rows (header and separator excluded) as lists of cells."""
    lines = [line for line in stdout.splitlines() if line.startswith('| ')]
    return [[c.strip() for c in line.strip('|').split('|')] for line in lines[1:]]


def test_tiny_cpu_run_without_the_task_libraries_passes():
    code = f'''
import runpy
sys.argv = ['device_check.py', '--device', 'cpu', '--size', 'tiny']
runpy.run_path({str(SCRIPT)!r}, run_name='__main__')
'''
    result = run_without_mm(code, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert [(r[0], r[1]) for r in rows] == [(f, p) for f in FAMILIES for p in ('fp32', 'bf16')]
    for model, precision, vs64, fused_vs_ref, fast_vs_gather, grads, *times, verdict in rows:
        assert verdict == 'pass' and grads == 'finite'
        tol = 1e-4 if precision == 'fp32' else 5e-2
        assert 0 < float(vs64.rstrip('*')) <= tol and 0 < float(fused_vs_ref) <= tol
        # BiFormer compares its fast BRA with the released gather; nothing else has one
        assert (fast_vs_gather != '-') == model.startswith('BiFormer')
        assert all(t == '-' or all(float(ms) > 0 for ms in t.split(' / ')) for t in times)
    # the dense BiFormer's routing and the anchors of the Poly* models nearly tie in bf16
    if any(vs64.endswith('*') for _, _, vs64, *_ in rows):
        assert 'the float64 run was repeated with its choices' in result.stdout


def test_a_violated_tolerance_fails_the_run(device_check, monkeypatch, capsys):
    monkeypatch.setattr(device_check, 'FAMILIES', {'PolyViT-S': device_check.FAMILIES['PolyViT-S']})
    monkeypatch.setitem(device_check.TOLERANCE, 'bf16', 1e-6)
    assert device_check.main(['--device', 'cpu', '--size', 'tiny', '--repeats', '1']) == 1
    (fp32, bf16) = table(capsys.readouterr().out)
    assert fp32[-1] == 'pass'
    assert bf16[-1] == 'FAIL: vs fp64 > 1e-06, fused vs ref > 1e-06'


def test_verdict_names_every_failure(device_check):
    row = {'grads': False, 'vs fp64': 2e-4, 'fused vs ref': 1e-7, 'fast vs gather': 3e-4}
    assert device_check.verdict(row, 'fp32') == \
        'FAIL: non-finite grads, vs fp64 > 0.0001, fast vs gather > 0.0001'
    assert device_check.verdict(dict(row, grads=True), 'bf16') == 'pass'


def test_replayed_choices_reproduce_the_run(device_check):
    """Polyphase anchors and BRA regions are recorded (another input chooses others) and a run
    that replays them makes the same choices and gives the same outputs."""
    for name in ('PolySwin-T', 'BiFormer-S dense'):
        model, (x,) = device_check.build(device_check.FAMILIES[name], 'tiny', 2)
        with torch.no_grad():
            with device_check.decisions() as choices:
                out = model(x)
            assert choices and all(c.dtype == torch.long for c in choices)
            with device_check.decisions() as other:
                model(x.flip(-1))
            assert not device_check.same_decisions(choices, other)
            with device_check.decisions(replay=choices) as replayed:
                again = model(x)
        assert device_check.same_decisions(choices, replayed)
        for a, b in zip(out, again):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
