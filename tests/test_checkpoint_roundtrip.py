"""Issue 10 Proof: every backbone, in every out_indices / stage combination the configs use,
saved as a training checkpoint, comes back exactly through ``load_from`` and through
``init_cfg=dict(type='Pretrained')`` (a windowlab checkpoint always loads as itself)."""
import copy

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
from torch import nn

from windowlab import launch

# Small widths of each backbone (the structure, out_indices and windows come from the configs).
TINY = {
    'WLSwinTransformer': dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
    'PolySwin': dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
    'BiFormer': dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
    'PolyTwins': dict(embed_dims=[16, 32, 64, 128], num_heads=[1, 2, 4, 8], depths=[2, 2, 2, 2],
                      window_sizes=[2, 2, 2, 2], sr_ratios=[4, 2, 2, 1]),
    'PolyViT': dict(embed_dims=32, depth=2, num_heads=2),
    'ViTAEv2VSA': dict(embed_dims=(16, 16, 32, 64), token_dims=(32, 64, 128, 256),
                       depths=(1, 1, 2, 1), rc_heads=(1, 2, 4, 8), nc_heads=(1, 2, 4, 8),
                       rc_groups=(1, 4, 8, 16), nc_groups=(1, 8, 16, 32), wide_pcm=False),
}


def _backbone_combinations():
    """{description: (scope, backbone cfg without init_cfg, tiny arch)} over configs/."""
    combos = {}
    for path in sorted((REPO / 'configs').glob('*/*.py')):
        cfg = Config.fromfile(path)
        if cfg.get('model') is None or cfg.model.get('backbone') is None:
            continue
        backbone = copy.deepcopy(cfg.model.backbone.to_dict())
        backbone.pop('init_cfg', None)
        backbone['arch'] = TINY[backbone['type']]
        backbone.pop('drop_path_rate', None)
        key = repr(sorted((k, v) for k, v in backbone.items() if k != 'arch'))
        combos.setdefault(key, (cfg.default_scope, backbone, path.name))
    return {f'{b["type"]}-{name}': (scope, b) for scope, b, name in combos.values()}


COMBOS = _backbone_combinations()


def _randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=g))
            else:
                value.copy_(torch.randint(0, 100, value.shape, generator=g))


class Whole(nn.Module):
    """Stands in for the detector/segmentor/classifier: ``backbone.*`` keys."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


def test_every_backbone_type_is_covered():
    assert {b['type'] for _, b in COMBOS.values()} == set(TINY)
    assert len(COMBOS) >= 15


@pytest.mark.parametrize('name', sorted(COMBOS))
def test_training_checkpoint_loads_as_itself(name, tmp_path):
    scope, cfg = COMBOS[name]
    trained = launch.build_in_scope(cfg, scope)
    _randomise(trained)
    expected = trained.state_dict()
    path = tmp_path / 'iter_10.pth'
    save_checkpoint({'meta': dict(iter=10, epoch=1),
                     'state_dict': Whole(trained).state_dict(),
                     'message_hub': dict(
                         log_scalars={'train/loss': HistoryBuffer([1.0, 0.5], [1, 1])})},
                    str(path))

    via_load_from = Whole(launch.build_in_scope(cfg, scope))  # what Runner.load_checkpoint does
    load_checkpoint(via_load_from, str(path), map_location='cpu', strict=True)
    for prefix in ('backbone.', None):
        via_init = launch.build_in_scope(
            dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix)), scope)
        via_init.init_weights()
        for loaded in (via_load_from.backbone.state_dict(), via_init.state_dict()):
            assert loaded.keys() == expected.keys()
            for key, value in expected.items():
                assert torch.equal(loaded[key], value), f'{key} (prefix {prefix})'
