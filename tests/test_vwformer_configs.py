"""VWFormer configs (configs/vwformer): every config builds and runs, the recipe's layer-wise
lr decay groups are right, and the toy configs exist (they train in tests/test_toy_training.py)."""
import copy

import pytest
import torch
from mmengine.config import Config

import windowlab.projects.vwformer  # noqa: F401  (registers VWHead and the optimizer constructor)
from windowlab import launch
from conftest import REPO
from windowlab.projects.vwformer.layer_decay import get_layer_id

CONFIGS = sorted((REPO / 'configs' / 'vwformer').glob('*.py'))
TOY = REPO / 'configs' / 'vwformer' / 'vwformer_swin-mini-p4-w7_toy-ade.py'
TOYS = [p for p in CONFIGS if p.stem.endswith('toy-ade')]


def build_model(cfg):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)  # no download
    return launch.build_in_scope(model_cfg, 'mmseg')


def test_configs_exist():
    names = {p.name for p in CONFIGS}
    for backbone in ('swin-t-p4-w7', 'swin-s-p4-w7', 'swin-vsa-t-p4-w7', 'biformer-s'):
        assert f'vwformer_{backbone}_4xb4-160k_ade20k-512x512.py' in names
    assert 'vwformer_swin-b-p4-w12_4xb4-160k_ade20k-640x640.py' in names
    assert 'vwformer_polyswin-t-p4-w7-rollback_4xb4-160k_ade20k-448x448.py' in names
    assert len(TOYS) == 4 and TOY in TOYS


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs_any_size(path):
    """Each config builds its segmentor and gives logits for a 96x136 image (not a multiple of
    64), or, for PolySwin, the smallest size its test-time padding allows."""
    cfg = Config.fromfile(str(path))
    assert cfg.model.decode_head.type == 'VWHead' and cfg.model.auxiliary_head is None
    model = build_model(cfg).eval()
    divisor = cfg.model.data_preprocessor.get('test_cfg', {}).get('size_divisor')
    h, w = (divisor, 2 * divisor) if divisor else (96, 136)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, h, w), mode='tensor')
    assert logits.shape == (1, cfg.model.decode_head.num_classes, h // 4, w // 4)
    assert torch.isfinite(logits).all()


def test_swin_t_recipe_param_groups():
    """AdamW 1e-4 / wd 0.05 with layer decay 0.85 over 6 + 2 levels, no decay on 1-D/bias."""
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
    cfg = Config.fromfile(
        str(REPO / 'configs/vwformer/vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'))
    model = build_model(cfg)
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=wrapper_cfg.pop('constructor'), optim_wrapper_cfg=wrapper_cfg,
        paramwise_cfg=wrapper_cfg.pop('paramwise_cfg')))
    groups = constructor(model).optimizer.param_groups
    owner = {id(p): g for g in groups for p in g['params']}
    named = dict(model.named_parameters())
    assert sum(len(g['params']) for g in groups) == len(named)

    def lr_wd(name):
        g = owner[id(named[name])]
        return g['lr'], g['weight_decay']

    base = 1e-4
    cases = {
        'decode_head.attn.2.query.weight': (base, 0.05),
        'decode_head.attn.2.query.bias': (base, 0.0),
        'backbone.norm3.weight': (base, 0.0),
        'backbone.stages.3.blocks.1.mlp.fc1.weight': (base * 0.85, 0.05),
        'backbone.stages.2.blocks.5.attn.qkv.weight': (base * 0.85**2, 0.05),  # 3 + 5 // 2 = 5
        'backbone.stages.2.blocks.1.attn.qkv.weight': (base * 0.85**4, 0.05),  # layer 3
        'backbone.stages.1.downsample.reduction.weight': (base * 0.85**5, 0.05),  # layer 2
        'backbone.stages.0.blocks.0.norm1.weight': (base * 0.85**6, 0.0),
        'backbone.patch_embed.proj.weight': (base * 0.85**7, 0.05),
    }
    for name, (lr, wd) in cases.items():
        assert name in named, name
        got = lr_wd(name)
        assert got[0] == pytest.approx(lr) and got[1] == wd, (name, got)


def test_layer_ids_for_biformer_layout_and_errors():
    from windowlab.projects.biformer import BiFormer
    bf = BiFormer(arch=dict(embed_dims=(32, 64, 64, 64), depths=(1, 1, 1, 1),
                            num_heads=(1, 2, 2, 2)))
    assert get_layer_id('backbone.stem.conv1.weight', 12, bf) == 0
    assert get_layer_id('backbone.downsamples.2.conv.weight', 12, bf) == 3
    assert get_layer_id('backbone.stages.2.17.attn.qkv.weight', 12, bf) == 11
    assert get_layer_id('backbone.stages.3.0.mlp.0.weight', 12, bf) == 12
    assert get_layer_id('backbone.norm2.weight', 12, bf) == 13
    with pytest.raises(ValueError, match='num_layers'):
        get_layer_id('backbone.stages.2.17.attn.qkv.weight', 6, bf)


def test_layer_ids_for_vitaev2_vsa():
    """The reduction cell of stage 0 is the stem, that of stage s the down-sampling after
    stage s - 1; normal cells are the blocks (the same rule as Swin)."""
    from windowlab.projects.vsa import ViTAEv2VSA
    vit = ViTAEv2VSA(arch=dict(embed_dims=(8, 8, 16, 16), token_dims=(8, 16, 16, 32),
                               depths=(1, 1, 4, 1), rc_heads=(1, 1, 1, 1), nc_heads=(1, 1, 1, 1),
                               rc_groups=(1, 1, 1, 1), nc_groups=(1, 1, 1, 1), wide_pcm=False))
    assert get_layer_id('backbone.stages.0.reduction.prm.convs.0.weight', 5, vit) == 0
    assert get_layer_id('backbone.stages.2.reduction.attn.qkv.weight', 5, vit) == 2
    assert get_layer_id('backbone.stages.0.normal.0.mlp.fc1.weight', 5, vit) == 1
    assert get_layer_id('backbone.stages.2.normal.3.attn.qkv.weight', 5, vit) == 4
    assert get_layer_id('backbone.stages.3.normal.0.cpe.weight', 5, vit) == 5
    assert get_layer_id('decode_head.conv_seg.weight', 5, vit) == 6


def test_cli_converts_a_whole_official_segmentor(parity_fixture):
    """An official VWFormer checkpoint = mmseg-layout Swin ``backbone.*`` + ``decode_head.*``:
    the CLI's conversion loads strictly into the windowlab segmentor of the toy config, and
    the backbone features equal mmseg's Swin."""
    import runpy

    from mmseg.models.backbones import SwinTransformer

    fx = parity_fixture('vwformer_head')
    head = fx.kwargs
    embed = head['in_channels'][0]
    assert head['in_channels'] == [embed * 2**i for i in range(4)]  # a Swin's widths
    cli = runpy.run_path(str(REPO / 'tools/model_converters/vwformer2windowlab.py'))
    torch.manual_seed(0)
    mmseg_swin = SwinTransformer(embed_dims=embed, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                                 window_size=7, out_indices=(0, 1, 2, 3))
    mmseg_swin.eval()  # its train() returns None: do not chain
    official = {f'backbone.{k}': v for k, v in mmseg_swin.state_dict().items()}
    official.update(fx.load('official.pth')['state_dict'])

    cfg = Config.fromfile(str(TOY))
    cfg.model.backbone.arch = dict(embed_dims=embed, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
    cfg.model.decode_head.update(in_channels=head['in_channels'], channels=head['channels'],
                                 num_classes=head['num_classes'])
    model = build_model(cfg).eval()
    model.load_state_dict(cli['convert_checkpoint'](official), strict=True)

    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ours, ref = model.extract_feat(x), mmseg_swin(x)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
        assert model(x, mode='tensor').shape == (1, head['num_classes'], 24, 32)
