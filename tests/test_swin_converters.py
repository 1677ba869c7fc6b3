"""Swin converters: full-size official and mmdet layouts load strictly; mmdet numerics match."""
import pytest
import torch

import windowlab  # noqa: F401
from windowlab.converters import CheckpointMismatchError, load_state_dict_strict
from windowlab.converters.swin import convert_swin, convert_swin_classifier, unfold_to_swin_order
from windowlab.launch import build_model

from conftest import random_state_dict


def swin_t(**kwargs):
    from mmdet.registry import MODELS
    return MODELS.build(dict(type='WLSwinTransformer', arch='tiny', **kwargs))


def test_official_swin_t_release_loads_strictly_into_classifier(key_listing):
    listing = key_listing('swin_tiny_patch4_window7_224.json')
    sd = random_state_dict(listing['keys'])
    from mmengine import Config
    cfg = Config.fromfile('configs/swin/swin-t-p4-w7_16xb64_in1k.py')
    model = build_model(cfg)
    load_state_dict_strict(model, convert_swin_classifier(sd))
    assert sum(p.numel() for p in model.parameters()) == listing['num_params'] == 28288354


def test_official_swin_t_release_as_detection_backbone(key_listing):
    sd = random_state_dict(key_listing('swin_tiny_patch4_window7_224.json')['keys'])
    backbone = swin_t()
    converted = convert_swin(sd)
    # The classifier's head and final norm are not part of a multi-scale backbone: the four
    # output norms are new, everything else is loaded.
    load_state_dict_strict(backbone, converted, optional=('norm0.', 'norm1.', 'norm2.', 'norm3.'))
    assert not any(k.startswith(('head.', 'norm.')) for k in converted)


def test_mmdet_swin_t_layout_loads_strictly(key_listing):
    listing = key_listing('mmdet_swin_t_backbone.json')
    sd = {'backbone.' + k: v for k, v in random_state_dict(listing['keys']).items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)  # rest of a detector checkpoint
    backbone = swin_t()
    load_state_dict_strict(backbone, convert_swin(sd))
    assert sum(p.numel() for p in backbone.parameters()) == listing['num_params']


def test_mmdet_swin_weights_give_the_same_features():
    """Real mmdet SwinTransformer weights (unfold-ordered patch merging) through the converter."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        theirs = MODELS.build(dict(type='SwinTransformer', embed_dims=16, depths=(2, 2, 2, 2),
                                   num_heads=(1, 2, 4, 8), window_size=7))
    theirs.eval()  # mmdet's Swin.train() returns None: no chaining
    for p in theirs.parameters():  # non-degenerate random weights
        p.data.normal_(0, 0.2)
    ours = MODELS.build(dict(type='WLSwinTransformer',
                             arch=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)))).eval()
    load_state_dict_strict(ours, convert_swin(theirs.state_dict()))
    x = torch.randn(1, 3, 100, 148)
    with torch.no_grad():
        for a, b in zip(theirs(x), ours(x)):
            assert (a - b).abs().max() < 1e-4


def test_windowlab_checkpoints_are_kept_as_they_are():
    """No layout guess from how many normN keys a windowlab file has: single-stage and
    multi-stage files both come back unchanged; only an official ``norm`` needs a rule."""
    for out_indices in ((3,), (2,), (0, 1, 2, 3)):
        sd = {f'backbone.{k}': v for k, v in swin_t(out_indices=out_indices).state_dict().items()}
        assert convert_swin(sd).keys() == {k[len('backbone.'):] for k in sd}
    official = {'norm.weight': torch.ones(768), 'layers.0.blocks.0.norm1.weight': torch.ones(96)}
    assert 'norm3.weight' not in convert_swin(official)
    assert 'norm3.weight' in convert_swin(official, final_norm='norm3')


def test_unfold_permutation_matches_nn_unfold():
    x = torch.randn(1, 3, 4, 4)
    unfold = torch.nn.functional.unfold(x, 2, stride=2)[0, :, 0]  # first 2x2 patch
    swin = torch.cat([x[0, :, 0, 0], x[0, :, 1, 0], x[0, :, 0, 1], x[0, :, 1, 1]])
    assert torch.equal(unfold[unfold_to_swin_order(12)], swin)


def test_mismatched_checkpoint_lists_missing_and_unexpected_keys():
    backbone = swin_t()
    sd = convert_swin(swin_t().state_dict())
    sd.pop('stages.0.blocks.0.attn.qkv.weight')
    sd['stages.9.bogus'] = torch.zeros(1)
    sd['patch_embed.proj.weight'] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(backbone, sd)
    msg = str(err.value)
    assert 'missing keys (1): stages.0.blocks.0.attn.qkv.weight' in msg
    assert 'unexpected keys (1): stages.9.bogus' in msg
    assert 'patch_embed.proj.weight: checkpoint (1, 1, 1, 1)' in msg


def test_corrupt_checkpoint_file_is_named(tmp_path):
    path = tmp_path / 'broken.pth'
    path.write_bytes(b'not a checkpoint')
    backbone = swin_t(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match='broken.pth.*corrupt'):
        backbone.init_weights()


def test_not_a_swin_checkpoint_is_refused():
    with pytest.raises(KeyError, match='not a Swin checkpoint'):
        convert_swin({'conv1.weight': torch.zeros(1)})
