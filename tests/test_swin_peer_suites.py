"""The behaviour checked by the three upstream Swin test suites, asserted of
``WLSwinTransformer`` with the upstream argument names (windowlab's own tests, not copies).

Sources: mmdet ``tests/test_models/test_backbones/test_swin.py`` (checks D1-D11), mmseg
``tests/test_models/test_backbones/test_swin.py`` (S1-S9), mmpretrain
``tests/test_models/test_backbones/test_swin_transformer.py`` (P1-P17). Each check is tagged:

* ``as upstream``: the same arguments, the same expectation;
* ``adapted``: the same behaviour, but the check names a windowlab attribute (upstream
  internals such as ``ffn``/``w_msa`` do not exist here: windowlab's block is
  ``norm1/attn/norm2/mlp`` with the released parameter names) or exception type (windowlab
  raises ``ValueError``/``TypeError`` with a message, not a bare ``AssertionError``);
* ``differs``: windowlab behaves otherwise on purpose (reason given).

Tally (37 checks): 19 as upstream, 16 adapted, 2 differ (P5, P10); all 35 others pass here.

Widths are reduced (``embed_dims=16``) to keep the tests fast; patch size, window size and
depth layout are upstream's, so every spatial shape is the upstream one and channel counts
scale with the width.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from windowlab.models.backbones.swin import SwinBlock, WLSwinTransformer

NARROW = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
# mmpretrain's defaults that differ from windowlab's (dense) ones, passed explicitly.
MMPRETRAIN = dict(arch=NARROW, img_size=224, patch_size=4, drop_path_rate=0.1,
                  out_indices=(3,), pad_small_map=False)


def narrow(**kwargs):
    return WLSwinTransformer(**dict(NARROW, **kwargs))


# ---------------------------------------------------------------- mmdet (D) and mmseg (S)

def test_block_structure_and_checkpointed_forward():
    """D1 (adapted: ``ffn.embed_dims``/``attn.w_msa.num_heads``/``ffn.feedforward_channels``
    are ``mlp.fc1`` and ``attn.num_heads`` here); D2 (adapted: ``with_cp`` is a stage flag,
    the stage checkpoints each of its blocks, so the block itself has none)."""
    block = SwinBlock(64, dict(type='WindowMSA', embed_dims=64, num_heads=4, window_size=7),
                      mlp_ratio=4)
    assert block.mlp.fc1.in_features == 64 and block.mlp.fc1.out_features == 256
    assert block.attn.num_heads == 4
    assert block(torch.randn(1, 56 * 56, 64), (56, 56)).shape == (1, 56 * 56, 64)

    model = narrow(with_cp=True).train()
    assert all(stage.with_cp for stage in model.stages)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    outs = model(x)
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]
    sum(o.sum() for o in outs).backward()
    assert x.grad is not None


def test_bad_arguments_are_rejected():
    """D3/S1 (as upstream): ``pretrained`` must be a str; D4/S2 (adapted, ValueError): the
    patch embedding does not overlap, so ``strides[0] == patch_size``; D5/S6 (adapted,
    ValueError): ``pretrain_img_size`` has 1 or 2 values; S5 (as upstream): ``(224,)``."""
    with pytest.raises(TypeError, match='pretrained'):
        WLSwinTransformer(pretrained=123)
    with pytest.raises(ValueError, match='strides'):
        WLSwinTransformer(strides=(2, 2, 2, 2), patch_size=4)
    with pytest.raises(ValueError, match='pretrain_img_size'):
        WLSwinTransformer(pretrain_img_size=(224, 224, 224))
    model = narrow(pretrain_img_size=(224,), use_abs_pos_embed=True)
    assert model.absolute_pos_embed.shape == (1, 56 * 56, 16)


def test_absolute_position_embedding_and_patch_norm():
    """D6/S3 (as upstream): abs position embedding, init and forward; D7/S4 (as upstream):
    ``patch_norm=False``."""
    x = torch.randn(1, 3, 224, 224)
    model = narrow(pretrain_img_size=224, use_abs_pos_embed=True)
    model.init_weights()
    assert model.absolute_pos_embed.std() > 0.01
    assert model(x)[3].shape == (1, 128, 7, 7)
    model = narrow(patch_norm=False)
    assert isinstance(model.patch_embed.norm, torch.nn.Identity)
    assert isinstance(model.stages[0].downsample.norm, torch.nn.Identity)
    assert model(x)[0].shape == (1, 16, 56, 56)


@pytest.mark.parametrize('size,expected', [
    ((512, 512), [(128, 128), (64, 64), (32, 32), (16, 16)]),   # D8 / S7
    ((511, 511), [(128, 128), (64, 64), (32, 32), (16, 16)]),   # D9 / S8
    ((112, 137), [(28, 35), (14, 18), (7, 9), (4, 5)]),         # D10 / S9
])
def test_output_shapes(size, expected):
    """D8-D10 / S7-S9 (as upstream; channels are ``16 * 2**i`` at this width)."""
    outs = narrow()(torch.randn(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == [
        (1, 16 * 2**i, *hw) for i, hw in enumerate(expected)]


def test_all_stages_frozen():
    """D11 (as upstream)."""
    model = narrow(frozen_stages=4)
    model.train()
    assert not any(p.requires_grad for p in model.parameters())
    # 0: the patch embedding and the absolute position embedding only (mmdet/mmseg)
    model = narrow(frozen_stages=0, use_abs_pos_embed=True)
    model.train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters()
                      if n.startswith(('patch_embed.', 'absolute_pos_embed'))}


# ---------------------------------------------------------------- mmpretrain (P)

def test_arch_errors_and_custom_arch():
    """P1/P2 (adapted: ValueError naming the choices / the missing keys); P3 (adapted:
    ``stage.embed_dims`` is the blocks' width, ``attn.w_msa.num_heads`` is
    ``attn.num_heads``)."""
    with pytest.raises(ValueError, match="unknown arch 'unknown'"):
        WLSwinTransformer(arch='unknown')
    with pytest.raises(ValueError, match='missing'):
        WLSwinTransformer(arch=dict(embed_dims=96, num_heads=[3, 6, 12, 16]))
    depths, num_heads = [2, 2, 4, 2], [6, 12, 6, 12]
    model = WLSwinTransformer(arch=dict(embed_dims=24, depths=depths, num_heads=num_heads))
    for i, stage in enumerate(model.stages):
        assert stage.blocks[0].norm1.normalized_shape == (24 * 2**i,)
        assert len(stage.blocks) == depths[i]
        assert stage.blocks[0].attn.num_heads == num_heads[i]
    assert WLSwinTransformer(arch='T').num_features == [96, 192, 384, 768]  # short names


def test_list_init_cfg_and_absolute_position_embedding():
    """P4 (adapted: ``patch_embed.projection`` is ``patch_embed.proj``)."""
    model = WLSwinTransformer(**dict(MMPRETRAIN, use_abs_pos_embed=True, init_cfg=[
        dict(type='Kaiming', layer='Conv2d', mode='fan_in', nonlinearity='linear')]))
    before = model.patch_embed.proj.weight.clone()
    assert torch.all(model.absolute_pos_embed == 0)
    model.init_weights()
    assert not torch.allclose(before, model.patch_embed.proj.weight)
    assert not torch.allclose(model.absolute_pos_embed, torch.tensor(0.))


def _mmpretrain_swin(**kwargs):
    from mmpretrain.models.backbones import SwinTransformer
    torch.manual_seed(0)
    model = SwinTransformer(**dict(MMPRETRAIN, **kwargs))
    model.eval()  # (its train() returns None: do not chain)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def test_mmpretrain_checkpoints_load_and_match(tmp_path):
    """P6 (adapted: an mmpretrain checkpoint loads through ``init_cfg``, since its keys are
    mmpretrain's, and the features equal mmpretrain's); P7 (as upstream): at another
    ``img_size`` the absolute position embedding is resized like timm's
    ``resize_pos_embed`` (bicubic, written out here). P5 (differs): mmpretrain's own
    pre-v2 keys (``norm.``) are not read; official files with ``norm.`` are."""
    ref = _mmpretrain_swin(use_abs_pos_embed=True)
    path = tmp_path / 'mmpretrain.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in ref.state_dict().items()}}, path)
    model = WLSwinTransformer(**dict(MMPRETRAIN, use_abs_pos_embed=True,
                                     init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        # measured: 2.7e-7 (float32 summation order)
        torch.testing.assert_close(model(x)[0], ref(x)[0], atol=2e-6, rtol=0)

    model = WLSwinTransformer(**dict(MMPRETRAIN, img_size=384, use_abs_pos_embed=True,
                                     init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    grid = ref.absolute_pos_embed.reshape(1, 56, 56, 16).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(96, 96), mode='bicubic', align_corners=False)
    torch.testing.assert_close(model.absolute_pos_embed.data,
                               expected.flatten(2).transpose(1, 2), atol=0, rtol=0)


def test_forward_window_sizes_and_outputs():
    """P8, P9, P11, P12, P14 (as upstream); P10 (differs: at 224 a window of 12 is larger
    than the 7x7 last map, and windowlab shrinks the window to the map as the official
    classification code does (``pad_small_map=False``) instead of raising)."""
    imgs = torch.randn(1, 3, 224, 224)
    outs = WLSwinTransformer(**MMPRETRAIN)(imgs)
    assert isinstance(outs, tuple) and len(outs) == 1 and outs[0].shape == (1, 128, 7, 7)

    model = WLSwinTransformer(**dict(MMPRETRAIN, window_size=12))
    assert model(torch.randn(1, 3, 384, 384))[0].shape == (1, 128, 12, 12)
    assert model(imgs)[0].shape == (1, 128, 7, 7)  # P10: no error here
    assert model.stages[3].blocks[0].attn.window_and_shift((7, 7)) == (7, 0)

    model = WLSwinTransformer(**dict(MMPRETRAIN, window_size=12, pad_small_map=True))
    assert model(imgs)[0].shape == (1, 128, 7, 7)
    assert model.stages[3].blocks[1].attn.window_and_shift((7, 7)) == (12, 6)

    outs = WLSwinTransformer(**dict(MMPRETRAIN, out_indices=(0, 1, 2, 3)))(imgs)
    assert [o.shape for o in outs] == [(1, 16 * s, 56 // s, 56 // s) for s in (1, 2, 4, 8)]

    model = WLSwinTransformer(**MMPRETRAIN)
    for shape in [(224, 224), (256, 256), (256, 309)]:
        out = model(torch.randn(1, 3, *shape))
        assert out[0].shape == (1, 128, math.ceil(shape[0] / 32), math.ceil(shape[1] / 32))


def test_with_cp_flags_and_trains():
    """P13 (adapted: the flag is on each stage, which checkpoints its blocks)."""
    model = WLSwinTransformer(**dict(MMPRETRAIN, with_cp=True))
    assert all(stage.with_cp for stage in model.stages)
    model.init_weights()
    model.train()
    assert model(torch.randn(1, 3, 224, 224))[0].shape == (1, 128, 7, 7)


def test_drop_path_rises_linearly():
    """P15 (adapted: one ``drop_path`` per block serves the attention and MLP branches,
    where mmpretrain has ``ffn.dropout_layer`` and ``attn.drop``)."""
    model = WLSwinTransformer(**dict(MMPRETRAIN, drop_path_rate=0.2))
    blocks = [b for stage in model.stages for b in stage.blocks]
    for i, block in enumerate(blocks):
        assert block.drop_path.p == pytest.approx(0.2 / (len(blocks) - 1) * i)


def test_norm_eval_and_stage_cfgs():
    """P16 (adapted): ``norm_cfg=dict(type='BN')`` output norms stay in eval with
    ``norm_eval``; mmpretrain's ``stage_cfgs`` (its internal block configs) is rejected with
    the windowlab arguments that do the same (the released blocks use LayerNorm)."""
    with pytest.raises(ValueError, match='block_cfg'):
        WLSwinTransformer(**dict(MMPRETRAIN, stage_cfgs=dict(block_cfgs=dict(
            norm_cfg=dict(type='BN')))))
    model = WLSwinTransformer(**dict(MMPRETRAIN, norm_cfg=dict(type='BN'), norm_eval=True))
    model.init_weights()
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model(torch.randn(2, 3, 64, 64))[0].shape == (2, 128, 2, 2)


def test_first_stage_frozen():
    """P17 (adapted: mmpretrain's ``frozen_stages=0`` freezes the patch embedding and stage
    0; windowlab counts like mmdet/mmseg (0: the patch embedding only), so that is
    ``frozen_stages=1`` here)."""
    model = WLSwinTransformer(**dict(MMPRETRAIN, frozen_stages=1, out_indices=(0, 1, 2, 3)))
    model.init_weights()
    model.train()
    assert not model.patch_embed.training
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert not any(p.requires_grad for p in model.norm0.parameters())
    for i in range(1, 4):
        assert all(p.requires_grad for p in model.stages[i].parameters())
        assert all(p.requires_grad for p in getattr(model, f'norm{i}').parameters())


# ---------------------------------------------------------------- the other upstream names

def test_flat_mmdet_arguments_equal_arch():
    """mmdet/mmseg's flat ``embed_dims``/``depths``/``num_heads`` build the same network as
    ``arch``."""
    a = WLSwinTransformer(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
    b = narrow()
    assert {k: v.shape for k, v in a.state_dict().items()} == {
        k: v.shape for k, v in b.state_dict().items()}


def test_out_after_downsample():
    """mmpretrain's ``out_after_downsample``: stage i's output after its down-sampling."""
    torch.manual_seed(0)
    model = narrow(out_after_downsample=True, norm_cfg=None).eval()
    x = torch.randn(1, 3, 64, 64)
    outs = model(x)
    assert model.num_features == [32, 64, 128, 128]
    assert [tuple(o.shape) for o in outs] == [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2),
                                              (1, 128, 2, 2)]
    # stage 1's map after the down-sampling is what stage 2 starts from
    plain = narrow(norm_cfg=None).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        tokens, hw = plain.patch_embed(x)
        for stage in plain.stages[:2]:
            _, _, tokens, hw = stage(tokens, hw)
    torch.testing.assert_close(outs[1], tokens.transpose(1, 2).reshape(1, 64, *hw))


def test_qk_scale_act_cfg_and_strides():
    """mmdet/mmseg ``qk_scale`` (the logit scale), ``act_cfg`` (MLP activation) and
    ``strides`` (stride of each down-sampling: ``s x s`` neighbours merged)."""
    model = narrow(qk_scale=0.125, act_cfg=dict(type='ReLU'))
    assert all(b.attn.scale == 0.125 for s in model.stages for b in s.blocks)
    assert all(isinstance(b.mlp.act, torch.nn.ReLU) for s in model.stages for b in s.blocks)

    model = narrow(strides=(4, 2, 3, 2))
    assert model.stages[1].downsample.reduction.in_features == 9 * 32
    outs = model(torch.randn(1, 3, 96, 96))
    assert [tuple(o.shape[2:]) for o in outs] == [(24, 24), (12, 12), (4, 4), (2, 2)]
    # the 3x3 merge concatenates neighbours row offset fastest (as Swin's 2x2 order)
    merge = model.stages[1].downsample
    x = torch.arange(6 * 6 * 32.).reshape(1, 36, 32)
    with torch.no_grad():
        merge.norm = torch.nn.Identity()
        merge.reduction.weight.zero_()
        merge.reduction.weight[:32, 32:64] = torch.eye(32)  # picks neighbour 1 = (1, 0)
        out, hw = merge(x, (6, 6))
    assert hw == (2, 2)
    torch.testing.assert_close(out.reshape(2, 2, 64)[0, 0, :32], x.reshape(6, 6, 32)[1, 0])


def test_component_arguments_name_windowlab_equivalents():
    with pytest.raises(ValueError, match='patch_embed_cfg'):
        WLSwinTransformer(patch_cfg=dict(kernel_size=3))
    with pytest.raises(ValueError, match='pretrained or init_cfg'):
        WLSwinTransformer(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b'))
    with pytest.raises(ValueError, match='same argument'):
        WLSwinTransformer(pretrain_img_size=224, img_size=224)
    with pytest.raises(TypeError, match="unexpected keyword argument 'windw_size'"):
        WLSwinTransformer(windw_size=7)
    WLSwinTransformer(**dict(MMPRETRAIN, stage_cfgs=dict(), patch_cfg=dict()))  # defaults
    model = WLSwinTransformer(pretrained='a.pth', convert_weights=True)
    assert model.init_cfg == dict(type='Pretrained', checkpoint='a.pth')


def test_get_layer_depth_equals_mmpretrain():
    """The same (layer, num_layers) as mmpretrain's Swin for every shared parameter name
    (windowlab puts ``absolute_pos_embed`` with the stem at layer 0; mmpretrain leaves it
    at the last layer, with the head)."""
    from types import SimpleNamespace

    from mmpretrain.models.backbones import SwinTransformer

    model = narrow(use_abs_pos_embed=True)
    reference = SimpleNamespace(depths=list(NARROW['depths']))
    for name, _ in model.named_parameters():
        got = model.get_layer_depth('backbone.' + name, 'backbone.')
        if name == 'absolute_pos_embed':
            assert got == (0, 10)
            continue
        assert got == SwinTransformer.get_layer_depth(reference, 'backbone.' + name,
                                                      'backbone.'), name


@pytest.mark.parametrize('library,config', [
    ('mmdet', 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'),
    ('mmseg', '_base_/models/upernet_swin.py'),
    ('mmpretrain', '_base_/models/swin_transformer/tiny_224.py'),
])
def test_upstream_config_backbones_drop_in(library, config):
    """The ``backbone`` dict of each library's shipped Swin-T config, with only its ``type``
    changed (and the checkpoint left out), builds a windowlab Swin with the upstream model's
    parameter count and output shapes. mmpretrain's dict leaves ``out_indices`` to the
    default, which is ``(3,)`` there and the dense ``(0, 1, 2, 3)`` here: windowlab then has
    the three extra output norms and maps."""
    import importlib
    import os

    from mmengine.config import Config

    root = os.path.join(os.path.dirname(importlib.import_module(library).__file__), '.mim',
                        'configs')
    if not os.path.isfile(os.path.join(root, config)):
        pytest.skip(f'{library} is installed without its configs')
    cfg = Config.fromfile(os.path.join(root, config)).model.backbone.to_dict()
    cfg.pop('_delete_', None)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    upstream_type = cfg.pop('type')
    registry = importlib.import_module(f'{library}.registry').MODELS
    upstream = registry.build(dict(cfg, type=upstream_type))
    upstream.eval()
    ours = WLSwinTransformer(**cfg).eval()
    # (mmpretrain refuses maps smaller than the window, so it gets a full-size image)
    x = torch.randn(1, 3, *((224, 224) if library == 'mmpretrain' else (64, 96)))
    with torch.no_grad():
        theirs, mine = upstream(x), ours(x)
    if library == 'mmpretrain':
        extra = sum(p.numel() for i in range(3) for p in getattr(ours, f'norm{i}').parameters())
        mine = mine[3:]
    else:
        extra = 0
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) - extra == count(upstream)
    assert [o.shape for o in mine] == [o.shape for o in theirs]
