"""Every windowlab backbone takes what mmdet / mmseg / mmpretrain users pass to a backbone:
``with_cp``, ``frozen_stages``, ``norm_eval`` (where there are BatchNorms), list-form
``init_cfg`` and ``get_layer_depth`` (layer-wise lr decay)."""
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from windowlab.models.backbones.swin import SwinBlock, WLSwinTransformer
from windowlab.projects.biformer import BiFormer
from windowlab.projects.biformer.biformer import BiFormerBlock
from windowlab.projects.shift_equivariant import PolySwin, PolyTwins, PolyViT
from windowlab.projects.shift_equivariant.poly_twins import TwinsBlock
from windowlab.projects.shift_equivariant.poly_vit import ViTBlock
from windowlab.projects.vsa import ViTAEv2VSA
from windowlab.projects.vsa.vitaev2_vsa import NormalCell

SWIN = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4))
VITAE = dict(embed_dims=(8, 8, 16, 16), token_dims=(8, 16, 16, 32), depths=(1, 1, 2, 1),
             rc_heads=(1, 2, 2, 2), nc_heads=(2, 2, 2, 4), rc_groups=(1, 2, 2, 4),
             nc_groups=(1, 2, 2, 4), wide_pcm=False)

# name -> (constructor, kwargs, input side, block class, stem prefixes, stage-k prefixes)
BACKBONES = {
    'swin': (WLSwinTransformer, dict(arch=SWIN, window_size=4), 64, SwinBlock),
    'swin_vsa': (WLSwinTransformer, dict(arch=SWIN, window_size=4, shift_windows=False,
                                         attn_cfg=dict(type='VSAWindowAttention')), 64, SwinBlock),
    'polyswin': (PolySwin, dict(arch=SWIN, window_size=2, out_indices=(0, 1, 2, 3)), 64,
                 SwinBlock),
    'vitaev2_vsa': (ViTAEv2VSA, dict(arch=VITAE, window_size=2), 64, NormalCell),
    'biformer': (BiFormer, dict(arch=dict(embed_dims=(16, 32, 32, 32), depths=(1, 1, 2, 1),
                                          num_heads=(1, 1, 1, 1)),
                                n_win=2, topks=(1, 2, 2, -1), out_indices=(0, 1, 2, 3),
                                out_norm_cfg=dict(type='LN2d')), 64, BiFormerBlock),
    'polyvit': (PolyViT, dict(arch=dict(embed_dims=16, depth=3, num_heads=2), patch_size=8), 32,
                ViTBlock),
    'polytwins': (PolyTwins, dict(arch=dict(embed_dims=[8, 16, 16, 16], num_heads=[1, 1, 1, 1],
                                            depths=[2, 2, 2, 2], window_sizes=[2, 2, 2, 2],
                                            sr_ratios=[2, 2, 2, 1]),
                                  out_indices=(0, 1, 2, 3)), 64, TwinsBlock),
}
NAMES = sorted(BACKBONES)

# Parameters of frozen_stages = 0 (the stem) and of stage 0, by key prefix (the ones that
# frozen_stages = 1 adds), from each backbone's layout.
STEM = {'swin': ('patch_embed.',), 'swin_vsa': ('patch_embed.',), 'polyswin': ('patch_embed.',),
        'vitaev2_vsa': ('stages.0.reduction.',), 'biformer': ('stem.',),
        'polyvit': ('patch_embed.', 'pos_conv.', 'cls_token'), 'polytwins': ('patch_embeds.0.',)}
STAGE0 = {'swin': ('stages.0.', 'norm0.'), 'swin_vsa': ('stages.0.', 'norm0.'),
          'polyswin': ('stages.0.', 'norm0.'), 'vitaev2_vsa': ('stages.0.',),
          'biformer': ('stages.0.', 'norm0.'), 'polyvit': ('blocks.0.',),
          'polytwins': ('blocks.0.', 'pos_convs.0.')}


def build(name, **kwargs):
    cls, base, side, _ = BACKBONES[name]
    torch.manual_seed(0)
    model = cls(**dict(base, **kwargs))
    model.init_weights()
    return model, side


def randomize_(model):
    """Random parameters (zero-initialised ones would hide wrong gradients)."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def grads_of(model, side, seed=1):
    torch.manual_seed(seed)  # same drop-path masks in both runs
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(3))
    sum(out.square().mean() for out in model(x)).backward()
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('name', NAMES)
def test_with_cp_recomputes_blocks_and_gives_identical_gradients(name):
    plain, side = build(name, drop_path_rate=0.2)
    ckpt, _ = build(name, drop_path_rate=0.2, with_cp=True)
    ckpt.load_state_dict(randomize_(plain).state_dict())
    plain.train(), ckpt.train()  # drop-path on: its masks must repeat in the recomputation
    block_type = BACKBONES[name][3]
    calls = []
    for m in ckpt.modules():
        if isinstance(m, block_type):
            # a pre-hook: the recomputation may stop before the block's end
            m.register_forward_pre_hook(lambda *_: calls.append(1))
    num_blocks = len(calls) or sum(isinstance(m, block_type) for m in ckpt.modules())
    reference = grads_of(plain, side)
    got = grads_of(ckpt, side)
    assert len(calls) == 2 * num_blocks  # every block ran again in the backward pass
    assert reference.keys() == got.keys()
    for key in reference:
        assert torch.equal(reference[key], got[key]), key


@pytest.mark.parametrize('name', NAMES)
def test_frozen_stages_freeze_in_train_too(name):
    for frozen, prefixes in ((0, STEM[name]), (1, STEM[name] + STAGE0[name])):
        model, side = build(name, frozen_stages=frozen)
        model.train()
        names = {n for n, p in model.named_parameters() if not p.requires_grad}
        expected = {n for n, _ in model.named_parameters() if n.startswith(prefixes)}
        assert names == expected, (frozen, sorted(names ^ expected)[:5])
        frozen_modules = [m for n, m in model.named_modules() if (n + '.').startswith(prefixes)]
        assert frozen_modules and not any(m.training for m in frozen_modules)
        assert model.training
        grads = grads_of(model, side)
        assert all(g is not None for g in grads.values())  # the rest still learns
    last = len(model.depths) if name != 'polyvit' else 3
    model, _ = build(name, frozen_stages=last)
    model.train()
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        build(name, frozen_stages=last + 1)


@pytest.mark.parametrize('name', ['vitaev2_vsa', 'biformer'])
def test_norm_eval_keeps_batchnorms_in_eval(name):
    model, _ = build(name, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.training
    model, _ = build(name)
    assert all(m.training for m in model.train().modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('name', NAMES)
def test_list_init_cfg(name, tmp_path):
    """mmengine's list form: the Pretrained entry loads last (over the other initialisers);
    without one, the initialisers act after the default init."""
    source, side = build(name)
    randomize_(source)
    path = tmp_path / 'ckpt.pth'
    # a whole-model checkpoint (the backbone's keys under backbone.), as training saves it
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}},
               path)
    constant = dict(type='Constant', layer='Linear', val=0.5, bias=0.25)
    model, _ = build(name, init_cfg=[constant, dict(type='Pretrained', checkpoint=str(path))])
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    model, _ = build(name, init_cfg=[constant])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and all(bool((m.weight == 0.5).all()) for m in linears)
    with pytest.raises(ValueError, match='Pretrained'):
        pretrained = dict(type='Pretrained', checkpoint=str(path))
        build(name, init_cfg=[pretrained, pretrained])


@pytest.mark.parametrize('name', NAMES)
def test_get_layer_depth(name):
    """mmpretrain's convention, from each backbone's layout: the stem is 0, block j of stage
    s is sum(depths[:s]) + j + 1, everything after the blocks and outside the backbone is
    num_layers - 1, with num_layers = sum(depths) + 2."""
    model, _ = build(name)
    depths = model.depths
    num_layers = sum(depths) + 2
    block_type = BACKBONES[name][3]
    blocks = [n for n, m in model.named_modules() if isinstance(m, block_type)]
    assert len(blocks) == sum(depths)
    for index, block in enumerate(blocks):  # blocks in forward order
        for pname, _ in model.get_submodule(block).named_parameters():
            assert model.get_layer_depth(f'backbone.{block}.{pname}', 'backbone.') == (
                index + 1, num_layers)
    for pname, _ in model.named_parameters():
        depth, total = model.get_layer_depth('backbone.' + pname, 'backbone.')
        assert total == num_layers and 0 <= depth < num_layers
        if pname.startswith(STEM[name]):
            assert depth == 0, pname
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (num_layers - 1, num_layers)


def test_mmpretrain_layer_decay_constructor_uses_get_layer_depth():
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    from mmpretrain.models import build_classifier

    model = build_classifier(dict(
        type='ImageClassifier',
        backbone=dict(type='ViTAEv2VSA', arch=VITAE, window_size=2, out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32)))
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        paramwise_cfg=dict(layer_decay_rate=0.5))
    groups = constructor(model).optimizer.param_groups
    lr = {g['param_name']: g['lr'] for g in groups}
    num_layers = sum(VITAE['depths']) + 2  # 7
    assert lr['backbone.stages.0.reduction.prm.convs.0.weight'] == 0.5 ** (num_layers - 1)
    assert lr['backbone.stages.2.normal.1.mlp.fc1.weight'] == 0.5 ** (num_layers - 1 - 4)
    assert lr['head.fc.weight'] == 1.0


def test_vwformer_layer_decay_for_vitaev2_vsa():
    """VWFormer's constructor places ViTAEv2-VSA parameters through the backbone."""
    import windowlab.projects.vwformer.layer_decay  # noqa: F401  (registers the constructor)
    from mmseg.models import build_segmentor
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

    model = build_segmentor(dict(
        type='EncoderDecoder',
        backbone=dict(type='ViTAEv2VSA', arch=VITAE, window_size=2),
        decode_head=dict(type='FCNHead', in_channels=32, channels=8, num_convs=1, in_index=3,
                         num_classes=3)))
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='HierarchicalLayerDecayOptimizerConstructor',
        optim_wrapper_cfg=dict(optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        paramwise_cfg=dict(num_layers=5, decay_rate=0.5)))
    groups = constructor(model).optimizer.param_groups
    scale = {n: g['lr'] for g in groups for n in g['param_names']}
    # layer i: 0.5 ** (num_layers + 1 - i); stage 2 block 1 is 3 + 1 // 2 = 3
    assert scale['backbone.stages.0.reduction.prm.convs.0.weight'] == 0.5 ** 6
    assert scale['backbone.stages.2.normal.1.attn.qkv.weight'] == 0.5 ** 3
    assert scale['backbone.stages.3.reduction.attn.qkv.weight'] == 0.5 ** 3  # after stage 2
    assert scale['backbone.stages.3.normal.0.mlp.fc1.weight'] == 0.5
    assert scale['decode_head.conv_seg.weight'] == 1.0


def test_final_norm_is_read_from_a_list_init_cfg():
    """``final_norm`` of the Pretrained entry counts in the list form too."""
    from windowlab.converters.checkpoint import pretrained_final_norm
    model = WLSwinTransformer(arch=SWIN, out_indices=(3,), init_cfg=[
        dict(type='Constant', layer='Linear', val=0.5),
        dict(type='Pretrained', checkpoint='unused.pth', final_norm='norm3')])
    assert pretrained_final_norm(model) == 'norm3'
    model.init_cfg[1]['final_norm'] = 'norm0'
    with pytest.raises(ValueError, match='not an output norm'):
        pretrained_final_norm(model)
