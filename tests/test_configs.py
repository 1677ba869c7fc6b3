"""Every config in configs/ builds its model at full size and runs one forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import windowlab  # noqa: F401
from windowlab.launch import build_model

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / 'configs').glob('*/*.py')
                 if p.parent.name != '_base_')
# Input side per task: large enough for every stride and window, small enough for a CPU.
SIDE = {'mmpretrain': 224, 'mmdet': 128, 'mmseg': 128}


def input_side(config, cfg):
    """The task's side (the toy images' side for toy-in), rounded up to the multiple the data
    preprocessor pads images to (e.g. shift-equivariant dense models need multiples of 224)."""
    side = 64 if 'toy-in' in config else SIDE[cfg.default_scope]
    dp = cfg.model.get('data_preprocessor') or {}
    divisor = dp.get('pad_size_divisor') or (dp.get('test_cfg') or {}).get('size_divisor') or 1
    return -(-side // divisor) * divisor


def data_samples(scope, side):
    if scope != 'mmdet':
        return None
    from mmdet.structures import DetDataSample
    shape = (side, side)
    return [DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                        batch_input_shape=shape, scale_factor=(1.0, 1.0)))]


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_runs(config):
    cfg = Config.fromfile(REPO / config)
    # upstream tools and inferencers import windowlab from the config itself
    assert cfg.custom_imports == dict(imports=['windowlab'], allow_failed_imports=False)
    rpn = cfg.model.get('test_cfg', {}).get('rpn')
    if rpn:  # a few proposals are enough to run the RoI heads once
        rpn.update(nms_pre=50, max_per_img=10)
    model = build_model(cfg).eval()
    side = input_side(config, cfg)
    with torch.no_grad():
        out = model(torch.randn(1, 3, side, side), data_samples(cfg.default_scope, side), mode='tensor')
    tensors = list(flatten(out))
    assert tensors and all(torch.isfinite(t).all() for t in tensors)


def flatten(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from flatten(v)
    elif isinstance(out, (tuple, list)):
        for v in out:
            yield from flatten(v)


@pytest.mark.parametrize('config', CONFIGS)
def test_checkpoints_keep_the_random_state(config):
    """Every config saves the generator states, so --resume continues the same random stream."""
    hooks = Config.fromfile(REPO / config).default_hooks
    assert hooks.get('rng_state', {}).get('type') == 'RNGStateHook'


@pytest.mark.parametrize('config', CONFIGS)
def test_non_finite_losses_stop_training(config):
    """Every config stops on a NaN/inf loss (FiniteLossHook, opt-out: stop=False)."""
    hooks = Config.fromfile(REPO / config).default_hooks
    assert hooks.get('finite_loss') == dict(type='FiniteLossHook')


def test_every_family_has_configs_for_every_task():
    for family in {Path(c).parts[1] for c in CONFIGS}:
        names = [Path(c).name for c in CONFIGS if Path(c).parts[1] == family]
        scopes = {Config.fromfile(REPO / 'configs' / family / n).default_scope for n in names}
        expected = {'mmseg'} if family == 'vwformer' else {'mmpretrain', 'mmdet', 'mmseg'}
        assert scopes == expected, family
