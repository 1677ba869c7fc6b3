"""Every toy config (``*_toy-coco.py``, ``*_toy-ade.py``, ``*_toy-in.py``) trains on the
generated data with a falling loss, through the same Runner path as tools/train.py."""
from pathlib import Path

import pytest

import windowlab  # noqa: F401
from windowlab import launch
from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg, toy_dataset_of

REPO = Path(__file__).resolve().parents[1]
TOY_CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / 'configs').glob('*/*toy-*.py'))
# Enough iterations for the loss to fall at the configs' constant learning rate.
ITERS = {'toy-coco': 16, 'toy-ade': 16, 'toy-in': 64}


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy-data')
    make_toy_data(str(root), num_train=12, num_val=4)
    return root


METRIC = {'toy-coco': 'coco/bbox_mAP', 'toy-ade': 'mIoU', 'toy-in': 'accuracy/top1'}


def test_every_family_has_a_toy_config_per_task():
    for family in {Path(c).parts[1] for c in TOY_CONFIGS}:
        datasets = {toy_dataset_of(c) for c in TOY_CONFIGS if Path(c).parts[1] == family}
        assert datasets == ({'toy-ade'} if family == 'vwformer' else set(METRIC)), family


def keep_all_detections(test_cfg):
    """Score threshold 0 wherever a detector's test_cfg has one."""
    if isinstance(test_cfg, dict):
        if 'score_thr' in test_cfg:
            test_cfg['score_thr'] = 0.0
        for value in test_cfg.values():
            keep_all_detections(value)


@pytest.mark.parametrize('config', TOY_CONFIGS)
def test_toy_config_trains_with_falling_loss_and_evaluates(config, toy_root, tmp_path):
    iters = ITERS[toy_dataset_of(config)]
    cfg = quick_training_cfg(REPO / config, toy_root, tmp_path, iters)
    keep_all_detections(cfg.model.get('test_cfg'))  # a barely trained detector is unsure
    runner = launch.build_runner(cfg)
    runner.train()
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    assert len(losses) == iters
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.9 * first, f'loss did not fall: {losses}'
    metrics = runner.test()  # the task's standard metric runs on the toy val split
    assert METRIC[toy_dataset_of(config)] in metrics
