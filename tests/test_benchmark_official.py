"""tools/analysis_tools/benchmark_official.py without the official code: ``--reference --quick``
compares windowlab's fused path with its own reference path (and BiFormer's fast BRA with the
released gather) on narrow models, and prints one Markdown table."""
import re
import subprocess
import sys

from conftest import REPO

CELL_SPEED = re.compile(r'^(\d+\.\d\d)x \((\d+) / (\d+) ms\)$')
CELL_MEMORY = re.compile(r'^(\d+\.\d\d)x \((\d+) vs (\d+) MiB\)$')


def test_reference_quick_table():
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark_official.py', '--reference', '--quick',
         '--threads', '1', '--rows', 'swin_t', 'biformer_s_dense'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('|')]
    assert lines[0] == ('| model | input | vs | fwd speed-up | fwd+bwd speed-up | '
                        'peak fwd+bwd memory ratio | outputs max diff |')
    assert lines[1] == '|---|---|---|---|---|---|---|'
    rows = [[cell.strip() for cell in line.strip('|').split('|')] for line in lines[2:]]
    assert [r[0] for r in rows] == ['Swin-T cls', 'BiFormer-S dense (n_win 8, auto_pad)']
    assert [r[1] for r in rows] == ['1x64²', '1x128²']
    for row in rows:
        assert len(row) == 7 and row[2] == 'windowlab reference'
        for cell in row[3:5]:
            ratio, other, ours = CELL_SPEED.match(cell).groups()
            assert float(ratio) > 0
        ratio, ours, other = CELL_MEMORY.match(row[5]).groups()
        assert int(ours) > 0 and int(other) > 0
        assert float(row[6]) < 1e-4  # fused vs reference (fast vs gather BRA), same weights
