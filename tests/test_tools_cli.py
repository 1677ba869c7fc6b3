"""tools/train.py, tools/test.py and the Swin converter as a user runs them, including the
errors for bad input (unknown type, missing dataset, checkpoint that does not fit)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg

REPO = Path(__file__).resolve().parents[1]
SEG_TOY = REPO / 'configs/swin/upernet_swin-mini-p4-w7_toy-ade.py'


def run(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A toy segmentation config trained for 4 iterations with tools/train.py."""
    tmp = tmp_path_factory.mktemp('cli')
    make_toy_data(str(tmp / 'data'), names=('toy-ade',), num_train=4, num_val=2)
    cfg = quick_training_cfg(SEG_TOY, tmp / 'data', tmp / 'work', iters=4, checkpoint_interval=4)
    cfg.dump(str(tmp / 'seg.py'))
    result = run('tools/train.py', tmp / 'seg.py', '--work-dir', tmp / 'work')
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp


def test_train_writes_logs_and_checkpoints(trained):
    work = trained / 'work'
    assert (work / 'iter_4.pth').is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')
    logs = list(work.glob('*/*.log'))
    assert logs and 'Iter(train) [4/4]' in logs[0].read_text()


def test_test_tool_evaluates_and_writes_outputs(trained):
    result = run('tools/test.py', trained / 'seg.py', trained / 'work/iter_4.pth',
                 '--work-dir', trained / 'test', '--out', trained / 'pred', '--show-dir', trained / 'vis')
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'mIoU'" in result.stdout
    assert len(list((trained / 'pred').glob('*.png'))) == 2
    assert list((trained / 'vis').rglob('*.png'))


def test_test_tool_refuses_a_checkpoint_that_does_not_fit(trained, tmp_path):
    ckpt = torch.load(trained / 'work/iter_4.pth', weights_only=True)
    sd = ckpt['state_dict']
    sd['backbone.stages.9.extra.weight'] = sd.pop('backbone.norm0.weight')
    torch.save({'state_dict': sd}, tmp_path / 'bad.pth')
    result = run('tools/test.py', trained / 'seg.py', tmp_path / 'bad.pth')
    assert result.returncode != 0
    assert 'missing keys (1): backbone.norm0.weight' in result.stderr
    assert 'unexpected keys (1): backbone.stages.9.extra.weight' in result.stderr


def test_unknown_type_suggests_the_right_name(trained, tmp_path):
    result = run('tools/train.py', trained / 'seg.py', '--work-dir', tmp_path, '--cfg-options',
                 'model.backbone.type=WLSwinTransformr')
    assert result.returncode != 0
    assert "unknown type 'WLSwinTransformr'" in result.stderr
    assert 'Did you mean WLSwinTransformer' in result.stderr


def test_missing_dataset_names_path_and_fix(trained, tmp_path):
    result = run('tools/train.py', trained / 'seg.py', '--work-dir', tmp_path,
                 '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/data/toy-ade-missing')
    assert result.returncode != 0
    assert 'toy-ade-missing' in result.stderr and 'does not exist' in result.stderr
    assert 'tools/make_toy_data.py' in result.stderr


def test_swin_converter_cli_output_evaluates_like_the_official_model(parity_fixture, tmp_path):
    fx = parity_fixture('swin_cls')
    result = run('tools/model_converters/swin2windowlab.py', fx.path('official.pth'), tmp_path / 'c.pth')
    assert result.returncode == 0, result.stderr[-3000:]
    from test_swin_parity import build_classifier

    from windowlab.converters import load_state_dict_strict
    model = build_classifier(fx).eval()
    load_state_dict_strict(model, torch.load(tmp_path / 'c.pth', weights_only=True)['state_dict'])
    with torch.no_grad():
        logits = model(fx.load('input.pt'), mode='tensor')
    assert (logits - fx.load('expected.pt')['logits']).abs().max() < fx.atol
