"""Issue 10: explicit rules for loading weights (never guessed), windows that differ from the
pretrained ones, official files built with other windows, and errors that name the problem."""
import argparse
import logging
import runpy

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, random_state_dict
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

from windowlab.converters import CheckpointMismatchError, load_state_dict_strict
from windowlab.converters.checkpoint import (TRUST_ENV, UntrustedCheckpointError,
                                             load_checkpoint_file)
from windowlab.converters.swin import convert_swin
from windowlab.projects.vsa.converter import convert_vitaev2_vsa_backbone

TINY_SWIN = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


@pytest.fixture
def mm_log():
    """Messages logged through mmengine's current logger during the test."""
    from mmengine.logging import MMLogger

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    logger, handler = MMLogger.get_current_instance(), Collect()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def build(**cfg):
    return MODELS.build(cfg)


def randomised(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=g))
    return module


# ---------------------------------------------------------------- 1. no final-norm guess

def test_official_classifier_norm_is_not_copied_into_a_single_stage_dense_backbone(
        key_listing, tmp_path):
    """As the official detection code, mmdet and mmseg: out_indices=(3,) gets a fresh norm3."""
    official = random_state_dict(key_listing('swin_tiny_patch4_window7_224.json')['keys'])
    path = tmp_path / 'swin_tiny_patch4_window7_224.pth'
    torch.save({'model': official}, path)
    dense = build(type='WLSwinTransformer', out_indices=(3,),
                  init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    dense.init_weights()
    assert torch.equal(dense.norm3.weight, torch.ones(768))
    assert torch.equal(dense.stages[3].blocks[1].mlp.fc2.weight,
                       official['layers.3.blocks.1.mlp.fc2.weight'])
    # Fine-tuning a classifier says so explicitly.
    classifier = build(type='WLSwinTransformer', out_indices=(3,), init_cfg=dict(
        type='Pretrained', checkpoint=str(path), final_norm='norm3'))
    classifier.init_weights()
    assert torch.equal(classifier.norm3.weight, official['norm.weight'])


def test_final_norm_must_name_an_output_norm(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save({'model': {}}, path)
    backbone = build(type='WLSwinTransformer', arch=TINY_SWIN, out_indices=(0, 1),
                     init_cfg=dict(type='Pretrained', checkpoint=str(path), final_norm='norm3'))
    with pytest.raises(ValueError, match=r"final_norm='norm3'.*\['norm0', 'norm1'\]"):
        backbone.init_weights()


@pytest.mark.parametrize('out_indices', [(2,), (3,), (0,)])
def test_single_stage_windowlab_file_keeps_its_trained_norm(out_indices, tmp_path):
    trained = randomised(build(type='WLSwinTransformer', arch=TINY_SWIN, out_indices=out_indices))
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in trained.state_dict().items()}}, path)
    loaded = build(type='WLSwinTransformer', arch=TINY_SWIN, out_indices=out_indices,
                   init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    loaded.init_weights()
    name = f'norm{out_indices[0]}'
    assert torch.equal(getattr(loaded, name).weight, getattr(trained, name).weight)


def test_output_norms_the_model_does_not_return_are_dropped_with_a_log_line(tmp_path, mm_log):
    trained = randomised(build(type='WLSwinTransformer', arch=TINY_SWIN))  # norm0..norm3
    path = tmp_path / 'dense.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in trained.state_dict().items()}}, path)
    retina = build(type='WLSwinTransformer', arch=TINY_SWIN, out_indices=(1, 2, 3),
                   init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    retina.init_weights()
    assert any('dropped norm0 (not an output of this model' in m for m in mm_log)
    for key, value in retina.state_dict().items():
        assert torch.equal(value, trained.state_dict()[key]), key


def test_classifier_batchnorm_does_not_feed_dense_layernorms(tmp_path, mm_log):
    """A windowlab BiFormer classifier (BatchNorm norm3) into a dense BiFormer (LN2d norms):
    the norm is dropped with a log line, every other tensor loads."""
    arch = dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
    classifier = randomised(build(type='BiFormer', arch=arch))
    path = tmp_path / 'cls.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in classifier.state_dict().items()}},
               path)
    dense = build(type='BiFormer', arch=arch, out_indices=(0, 1, 2, 3),
                  out_norm_cfg=dict(type='LN2d'),
                  init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    dense.init_weights()
    assert any('dropped norm3 (another kind of norm' in m for m in mm_log)
    assert torch.equal(dense.norm3.weight, torch.ones(256))
    assert torch.equal(dense.stages[2][1].attn.qkv.weight, classifier.stages[2][1].attn.qkv.weight)


# ---------------------------------------------------------------- 2. window-size changes

def official_resize(table, window):
    """microsoft/Swin-Transformer utils.load_pretrained (and Swin-Transformer-Object-Detection
    mmcv_custom/checkpoint.py): bicubic on the (2W-1) x (2W-1) offset grid, per head."""
    length, heads = table.shape
    s1, s2 = int(length ** 0.5), 2 * window - 1
    grid = table.permute(1, 0).view(1, heads, s1, s1)
    return F.interpolate(grid, size=(s2, s2), mode='bicubic').view(heads, s2 * s2).permute(1, 0)


VSA_TINY = dict(embed_dims=(16, 16, 32, 64), token_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1),
                rc_heads=(1, 2, 4, 8), nc_heads=(1, 2, 4, 8), rc_groups=(1, 4, 8, 16),
                nc_groups=(1, 8, 16, 32), wide_pcm=False)
TABLE_MODELS = {
    'swin': lambda w: dict(type='WLSwinTransformer', arch=TINY_SWIN, window_size=w),
    'swin-cls-384': lambda w: dict(type='WLSwinTransformer', arch=TINY_SWIN, window_size=w,
                                   out_indices=(3,), attn_cfg=dict(type='WindowMSA',
                                                                   adaptive_window=True)),
    # Swin-VSA's CPE kernel follows the window and has no official resize rule (a file with
    # another window is refused for it, naming the shapes): the tables are compared here.
    'swin-vsa': lambda w: dict(type='WLSwinTransformer', arch=TINY_SWIN, window_size=w,
                               attn_cfg=dict(type='VSAWindowAttention', use_cpe=False),
                               shift_windows=False),
    'polyswin': lambda w: dict(type='PolySwin', arch=TINY_SWIN, window_size=w),
    # ViTAEv2-VSA 'cls' keeps its CPEs 7x7, so only the tables differ with the window.
    'vitaev2-vsa': lambda w: dict(type='ViTAEv2VSA', arch=VSA_TINY, window_size=w, variant='cls'),
}


def _tables(module):
    return {k: v for k, v in module.state_dict().items() if k.endswith('rel_pos.table')}


@pytest.mark.parametrize('new_window', [12, 5])
@pytest.mark.parametrize('model', sorted(TABLE_MODELS))
def test_tables_of_another_window_are_resized_as_the_official_code(model, new_window, tmp_path,
                                                                   mm_log):
    pretrained = randomised(build(**TABLE_MODELS[model](7)))
    old = _tables(pretrained)
    assert old
    path = tmp_path / 'w7.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in pretrained.state_dict().items()}},
               path)
    cfg = TABLE_MODELS[model](new_window)

    via_init = build(**cfg, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    via_init.init_weights()
    via_strict = build(**cfg)  # tools/test.py
    load_state_dict_strict(via_strict, {k: v for k, v in pretrained.state_dict().items()})
    via_load_from = nn.Module()  # Runner.load_checkpoint
    via_load_from.backbone = build(**cfg)
    load_checkpoint(via_load_from, str(path), map_location='cpu', strict=True)

    s = 2 * new_window - 1
    for loaded in (via_init, via_strict, via_load_from.backbone):
        tables = _tables(loaded)
        assert tables.keys() == old.keys()
        for key, table in old.items():
            torch.testing.assert_close(tables[key], official_resize(table, new_window),
                                       rtol=0, atol=1e-6)
    first = sorted(old)[0]
    resized = [m for m in mm_log if m.startswith(f'resized {first} from 13x13 offsets (window 7) '
                                                 f'to {s}x{s}')]
    assert len(resized) == 2  # init_cfg and strict load (load_from logs backbone.<key>)
    assert sum(m.startswith('resized ') for m in mm_log) == 3 * len(old)  # one line per table


def test_no_model_has_an_absolute_position_embedding():
    """Nothing else depends on the image size: Swin is built without ``ape`` (as every
    released Swin), PolyViT and PolyTwins use convolutional position encodings."""
    for cfg in (TABLE_MODELS['swin'](7), dict(type='PolyViT', arch=dict(embed_dims=32, depth=1,
                                                                         num_heads=2))):
        names = [n for n, _ in build(**cfg).named_parameters()]
        assert not [n for n in names if 'pos_embed' in n or 'absolute' in n]


# ---------------------------------------------------------------- 3. shrunk windows

def _official_swin_cls_listing(key_listing, window, img_size=224):
    """The official classification keys for ``window``: a stage whose map side is <= window
    builds its attention (and table) for the map side (models/swin_transformer.py)."""
    keys = dict(key_listing('swin_tiny_patch4_window7_224.json')['keys'])
    for key, shape in keys.items():
        if key.endswith('relative_position_bias_table'):
            stage = int(key.split('.')[1])
            side = img_size // 4 // 2 ** stage
            w = side if side <= window else window
            keys[key] = [(2 * w - 1) ** 2, shape[1]]
    return keys


def test_official_window14_classifier_loads_with_per_stage_windows(key_listing, mm_log):
    official = random_state_dict(_official_swin_cls_listing(key_listing, window=14))
    assert official['layers.3.blocks.0.attn.relative_position_bias_table'].shape[0] == 13 * 13
    backbone = build(type='WLSwinTransformer', window_size=(14, 14, 14, 7), out_indices=(3,),
                     attn_cfg=dict(type='WindowMSA', adaptive_window=True))
    load_state_dict_strict(backbone, convert_swin(official, final_norm='norm3'))
    for i, j in ((0, 1), (2, 5), (3, 1)):
        assert torch.equal(backbone.stages[i].blocks[j].attn.rel_pos.table,
                           official[f'layers.{i}.blocks.{j}.attn.relative_position_bias_table'])
    assert not [m for m in mm_log if m.startswith('resized')]
    backbone.eval()(torch.randn(1, 3, 224, 224))  # stage 4: one 7x7 window, as official


def test_a_single_window_model_says_how_to_load_such_a_file(key_listing, mm_log):
    """Loading it into ``window_size=14`` would resize stage 4's table (not what the official
    model computes): the log says so and names the per-stage windows to use instead."""
    official = random_state_dict(_official_swin_cls_listing(key_listing, window=14))
    backbone = build(type='WLSwinTransformer', window_size=14, out_indices=(3,),
                     attn_cfg=dict(type='WindowMSA', adaptive_window=True))
    load_state_dict_strict(backbone, convert_swin(official, final_norm='norm3'))
    warnings = [m for m in mm_log if 'built for windows (14, 14, 14, 7)' in m]
    assert len(warnings) == 1 and 'window_size=(14, 14, 14, 7)' in warnings[0]


def test_per_stage_windows_need_one_per_stage():
    with pytest.raises(ValueError, match='one side per stage'):
        build(type='WLSwinTransformer', arch=TINY_SWIN, window_size=(7, 7))


# ---------------------------------------------------------------- 4. ViTAEv2-VSA windows

def _official_vitaev2_listing(key_listing, window, code):
    """Official ViTAEv2-VSA-S keys with ``window``: classification keeps 7x7 CPEs and gives
    every cell the window; detection keeps the reduction cells at window 7 and gives the
    normal cells a window//2*2+1 CPE (Image-Classification/ and Object-Detection/ cells)."""
    keys = dict(key_listing('vitaev2_vsa_s.json')['keys'])
    for key, shape in keys.items():
        normal = '.NC.' in key
        cell_window = window if (code == 'cls' or normal) else 7
        if key.endswith('relative_position_bias_table'):
            keys[key] = [(2 * cell_window - 1) ** 2, shape[1]]
        elif key.endswith('relative_position_index'):
            keys[key] = [cell_window ** 2] * 2
        elif key.endswith('.pos.weight') and code == 'det' and normal:
            k = window // 2 * 2 + 1
            keys[key] = [shape[0], 1, k, k]
    return keys


@pytest.mark.parametrize('code', ['cls', 'det'])
def test_official_vitaev2_vsa_with_window_12_loads(code, key_listing, mm_log):
    official = random_state_dict(_official_vitaev2_listing(key_listing, 12, code))
    backbone = build(type='ViTAEv2VSA', arch='s', window_size=12, variant=code)
    load_state_dict_strict(backbone, convert_vitaev2_vsa_backbone(official))
    assert not [m for m in mm_log if m.startswith('resized')]
    assert torch.equal(backbone.stages[1].normal[0].cpe.weight,
                       official['layers.1.NC.0.pos.weight'])
    assert torch.equal(backbone.stages[2].reduction.attn.rel_pos.table,
                       official['layers.2.RC.attn.relative_position_bias_table'])


# ---------------------------------------------------------------- 5. refused files

@pytest.fixture
def namespace_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(TRUST_ENV, '0')  # restored (unset) after the test
    path = tmp_path / 'with_args.pth'
    trained = randomised(build(type='WLSwinTransformer', arch=TINY_SWIN))
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in trained.state_dict().items()},
                'args': argparse.Namespace(lr=0.1)}, path)
    return path


def test_refused_checkpoint_names_the_type_and_the_switch(namespace_checkpoint):
    with pytest.raises(UntrustedCheckpointError) as err:
        load_checkpoint_file(namespace_checkpoint)
    message = str(err.value)
    assert err.value.refused == 'argparse.Namespace'
    assert 'holds a argparse.Namespace, which is not a tensor type' in message
    assert '--trust-checkpoint' in message and TRUST_ENV in message
    assert 'Unsupported global: GLOBAL argparse.Namespace' in message  # torch's full reason
    assert 'corrupt' not in message
    assert isinstance(err.value, CheckpointMismatchError)  # callers catching that still work


def test_trust_switch_loads_it(namespace_checkpoint, monkeypatch):
    monkeypatch.setenv(TRUST_ENV, '1')
    assert load_checkpoint_file(namespace_checkpoint)['args'].lr == 0.1


def test_converter_cli_refuses_then_trusts(namespace_checkpoint, tmp_path):
    main = runpy.run_path(str(REPO / 'tools/model_converters/swin2windowlab.py'))['main']
    dst = tmp_path / 'out.pth'
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace'):
        main([str(namespace_checkpoint), str(dst)])
    main([str(namespace_checkpoint), str(dst), '--trust-checkpoint'])
    assert 'backbone.norm3.weight' in torch.load(dst, weights_only=True)['state_dict']


# ---------------------------------------------------------------- 7. converter writes

CLIS = ['swin2windowlab.py', 'biformer2windowlab.py', 'vitaev2_vsa2windowlab.py',
        'vwformer2windowlab.py', 'poly2windowlab.py']


@pytest.mark.parametrize('cli', CLIS)
def test_converters_refuse_to_overwrite_their_input(cli, tmp_path):
    src = tmp_path / 'official.pth'
    torch.save({'state_dict': {'backbone.layers.0.x': torch.zeros(1)}}, src)
    before = src.read_bytes()
    args = ['polyswin'] if cli == 'poly2windowlab.py' else []
    main = runpy.run_path(str(REPO / 'tools/model_converters' / cli))['main']
    with pytest.raises((ValueError, KeyError, CheckpointMismatchError)) as err:
        main([*args, str(src), str(tmp_path / '.' / 'official.pth')])
    assert src.read_bytes() == before
    if isinstance(err.value, ValueError):
        assert 'refusing to overwrite the input' in str(err.value)


def test_converter_output_is_written_atomically(key_listing, tmp_path, monkeypatch):
    import windowlab.compat as compat
    official = random_state_dict(key_listing('swin_tiny_patch4_window7_224.json')['keys'])
    src, dst = tmp_path / 'official.pth', tmp_path / 'out.pth'
    torch.save({'model': official}, src)
    dst.write_bytes(b'previous')
    main = runpy.run_path(str(REPO / 'tools/model_converters/swin2windowlab.py'))['main']

    def crash(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(compat.os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        main([str(src), str(dst)])
    assert dst.read_bytes() == b'previous'  # the old file, not a truncated new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ['official.pth', 'out.pth']
    monkeypatch.undo()
    main([str(src), str(dst)])
    assert 'head.fc.weight' in torch.load(dst, weights_only=True)['state_dict']

