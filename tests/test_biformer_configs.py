"""configs/biformer: every config builds its model; the toy configs train with a falling loss."""
import pytest
import torch
from conftest import REPO, random_state_dict
from mmengine.config import Config

import windowlab.projects.biformer  # noqa: F401  (registers BiFormer)
from windowlab import launch

CONFIG_DIR = REPO / 'configs' / 'biformer'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))

# (backbone parameters, n_win) of the full-size configs; dense backbones have 4 LayerNorms
# instead of the final BatchNorm (S: 25,024,128 as the official BiFormer_mm listing).
FULL_SIZE = {
    'biformer-t_16xb128_in1k.py': (12_629_760, 7),
    'biformer-s_16xb128_in1k.py': (25_023_232, 7),
    'biformer-b_16xb128_in1k.py': (56_035_968, 7),
    'retinanet_biformer-s_fpn_1x_coco.py': (25_024_128, 16),  # norm0 as official (unused by FPN)
    'retinanet_biformer-b_fpn_1x_coco.py': (56_037_312, 16),
    'mask-rcnn_biformer-s_fpn_1x_coco.py': (25_024_128, 16),
    'mask-rcnn_biformer-b_fpn_1x_coco.py': (56_037_312, 16),
    'fpn_biformer-s_8xb4-80k_ade20k-512x512.py': (25_024_128, 8),
    'fpn_biformer-b_8xb4-80k_ade20k-512x512.py': (56_037_312, 8),
    'upernet_biformer-s_8xb2-160k_ade20k-512x512.py': (25_024_128, 8),
    'upernet_biformer-b_8xb2-160k_ade20k-512x512.py': (56_037_312, 8),
}


def test_the_issue_configs_exist():
    assert set(FULL_SIZE) <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = Config.fromfile(CONFIG_DIR / name)
    backbone = launch.build_model(cfg).backbone
    assert type(backbone).__name__ == 'BiFormer'
    bra = [m for m in backbone.modules() if type(m).__name__ == 'BiLevelRoutingAttention']
    assert bra and all(m.impl == 'fast' for m in bra)
    if name in FULL_SIZE:
        params, n_win = FULL_SIZE[name]
        assert sum(p.numel() for p in backbone.parameters()) == params
        assert all(m.n_win == n_win for m in bra)
        dense = cfg.default_scope in ('mmdet', 'mmseg')
        assert all(m.auto_pad == dense for m in bra)
        assert backbone.norm_eval == dense


def test_dense_config_loads_the_official_classification_release(key_listing, tmp_path):
    """The configs' init_cfg reads an official {'model': ...} file (random weights here)."""
    official = random_state_dict(key_listing('biformer_small.json')['keys'])
    path = tmp_path / 'biformer_small_in1k.pth'
    torch.save({'model': official}, path)
    cfg = Config.fromfile(CONFIG_DIR / 'mask-rcnn_biformer-s_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg.checkpoint = str(path)
    backbone = launch.build_model(cfg).backbone
    backbone.init_weights()
    assert torch.equal(backbone.stages[2][17].attn.lce.weight,
                       official['stages.2.17.attn.lepe.weight'])
    assert torch.equal(backbone.norm3.weight, torch.ones(512))  # fresh, as BiFormer_mm
