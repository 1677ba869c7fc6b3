"""configs/vsa: every config builds its model; the toy configs train with a falling loss."""
import copy

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

import projects.vsa  # noqa: F401  (registers the VSA models)

CONFIG_DIR = REPO / 'configs' / 'vsa'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))

# backbone type and parameters (without heads) of the full-size configs
BACKBONES = {
    'vitaev2-vsa-s': ('ViTAEv2VSA', 19_260_300),
    'vitaev2-vsa-48m': ('ViTAEv2VSA', 50_320_119),
    'swin-vsa-t': ('WLSwinTransformer', None),
    'swin-vsa-s': ('WLSwinTransformer', None),
}


def build_model(cfg):
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmengine.registry import MODELS
    return MODELS.build(copy.deepcopy(cfg.model))


def test_the_issue_configs_exist():
    expected = [
        'swin-vsa-t-p4-w7_16xb64_in1k.py', 'swin-vsa-s-p4-w7_16xb64_in1k.py',
        'vitaev2-vsa-s_8xb128_in1k.py', 'vitaev2-vsa-48m_16xb64_in1k.py',
        'upernet_vitaev2-vsa-s_8xb2-160k_ade20k-512x512.py',
        'upernet_swin-vsa-t-p4-w7_8xb2-160k_ade20k-512x512.py',
    ]
    for backbone in ('vitaev2-vsa-s', 'swin-vsa-t-p4-w7'):
        for head in ('mask-rcnn', 'cascade-mask-rcnn'):
            assert sum(c.startswith(f'{head}_{backbone}_') and ('1x' in c) for c in CONFIGS) == 1
            assert sum(c.startswith(f'{head}_{backbone}_') and ('3x' in c) for c in CONFIGS) == 1
    assert set(expected) <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = Config.fromfile(CONFIG_DIR / name)
    model = build_model(cfg)
    backbone = model.backbone
    for key, (kind, params) in BACKBONES.items():
        if f'_{key}' in name or name.startswith(key):
            assert type(backbone).__name__ == kind
            if params is not None:
                assert sum(p.numel() for p in backbone.parameters()) == params
    attn = [m for m in backbone.modules() if type(m).__name__ == 'VSAWindowAttention']
    assert attn, 'no VSA in the backbone'
    if type(backbone).__name__ == 'ViTAEv2VSA':
        variant = 'symmetric' if cfg.default_scope in ('mmdet', 'mmseg') else 'bottom_right'
        assert all(m.pad_mode == variant for m in attn)
    else:
        assert all(m.cpe is not None for m in attn)


class LossRecorder(Hook):
    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss'].detach()))


TOY = {
    'swin-vsa-mini-p4-w7_toy-in.py': ('toy-in', dict(max_epochs=3)),
    'mask-rcnn_swin-vsa-mini-p4-w7_fpn_toy-coco.py': ('toy-coco', dict(max_iters=24)),
    'upernet_swin-vsa-mini-p4-w7_toy-ade.py': ('toy-ade', dict(max_iters=24)),
    'mask-rcnn_vitaev2-vsa-mini_fpn_toy-coco.py': ('toy-coco', dict(max_iters=24)),
}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    from windowlab.datasets.toy import make_toy_data
    root = tmp_path_factory.mktemp('toy')
    make_toy_data(str(root / 'data'))
    return root


@pytest.mark.parametrize('name', sorted(TOY))
def test_toy_config_trains(name, toy_root, monkeypatch, tmp_path):
    from mmengine.runner import Runner
    monkeypatch.chdir(toy_root)
    torch.set_num_threads(1)
    cfg = Config.fromfile(CONFIG_DIR / name)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.update(TOY[name][1])
    cfg.train_cfg.pop('val_interval', None)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    losses = recorder.losses
    assert len(losses) >= 20 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f'{name}: {len(losses)} iterations, mean loss of the first 5 {first:.4f}, '
          f'of the last 5 {last:.4f}')
    assert last < first, (first, last, losses)
