"""Every backbone and the VW head's computation need only torch and mmengine.

The norm / activation / conv-norm-act builders of :mod:`windowlab.models.layers.norm_act` replace
mmcv's with the same modules and parameter names, and :class:`VWDecoder` is the mmseg
``VWHead``'s computation without mmseg. (tests/test_device_check.py builds and trains every
family in an interpreter without the OpenMMLab task libraries.)
"""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmcv.cnn import build_norm_layer as mmcv_build_norm_layer

from torch_only import BLOCKED, run_without_mm
from windowlab.models.layers.norm_act import (ConvNormAct, LayerNorm2d, build_activation_layer,
                                              build_norm_layer)
from windowlab.projects.vwformer import VWDecoder, VWHead

NORMS = [dict(type='BN', requires_grad=True), dict(type='SyncBN', requires_grad=True),
         dict(type='GN', num_groups=2), dict(type='LN', eps=1e-6)]


def test_blocker_blocks_the_task_libraries():
    result = run_without_mm('import mmcv')
    assert result.returncode != 0 and "No module named 'mmcv' (blocked)" in result.stderr


def test_windowlab_and_every_paper_import_without_the_task_libraries():
    code = '''
import importlib
import windowlab, windowlab.analysis, windowlab.converters, windowlab.models.layers
for name in windowlab.PROJECTS:
    importlib.import_module('windowlab.projects.' + name)
from windowlab.models.backbones.swin import WLSwinTransformer
from windowlab.projects.biformer import BiFormer
from windowlab.projects.shift_equivariant import PolySwin, PolyTwins, PolyViT
from windowlab.projects.vsa import ViTAEv2VSA, VSAWindowAttention
from windowlab.projects.vwformer import VWDecoder
print(sorted(windowlab.PROJECTS))
print(sorted({m.partition('.')[0] for m in sys.modules} & set(BLOCKED)))
'''
    result = run_without_mm(f'BLOCKED = {BLOCKED!r}\n' + code)
    assert result.returncode == 0, result.stderr
    projects, loaded = result.stdout.splitlines()[-2:]
    assert projects == "['biformer', 'shift_equivariant', 'vsa', 'vwformer']"
    assert loaded == '[]'


@pytest.mark.parametrize('cfg', NORMS + [dict(type='LN2d')], ids=lambda c: c['type'])
def test_norm_layer_matches_mmcv(cfg):
    name, layer = build_norm_layer(cfg, 8, postfix=1)
    if cfg['type'] == 'LN2d':  # mmcv builds it only from mmpretrain's or mmdet's registry
        assert (name, type(layer)) == ('ln1', LayerNorm2d)
        x = torch.randn(2, 8, 3, 5)
        torch.testing.assert_close(layer(x), torch.nn.functional.layer_norm(
            x.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2))
        return
    mmcv_name, mmcv_layer = mmcv_build_norm_layer(cfg, 8, postfix=1)
    assert (name, type(layer)) == (mmcv_name, type(mmcv_layer))
    assert repr(layer) == repr(mmcv_layer)
    assert layer.state_dict().keys() == mmcv_layer.state_dict().keys()


def test_requires_grad_and_unknown_types():
    _, frozen = build_norm_layer(dict(type='BN', requires_grad=False), 4)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert isinstance(build_activation_layer(dict(type='LeakyReLU', negative_slope=0.2)),
                      torch.nn.LeakyReLU)
    # types windowlab does not build go to mmcv ...
    assert type(build_norm_layer(dict(type='IN1d'), 4)[1]) is torch.nn.InstanceNorm1d
    assert isinstance(build_activation_layer(dict(type='HSwish')), torch.nn.Hardswish)
    # ... and without mmcv the error names the type
    result = run_without_mm('''
from windowlab.models.layers.norm_act import build_norm_layer
build_norm_layer(dict(type='IN1d'), 4)
''')
    assert "KeyError: \"'IN1d' is not one of the types windowlab builds itself" in result.stderr
    assert 'mmcv, which would build it, is not installed' in result.stderr


@pytest.mark.parametrize('norm_cfg', NORMS[:3] + [None], ids=str)
@pytest.mark.parametrize('act_cfg', [dict(type='ReLU'), dict(type='LeakyReLU'), None], ids=str)
def test_conv_norm_act_is_mmcv_conv_module(norm_cfg, act_cfg):
    ours = ConvNormAct(8, 6, 3, norm_cfg=norm_cfg, act_cfg=act_cfg)
    theirs = ConvModule(8, 6, 3, norm_cfg=norm_cfg, act_cfg=act_cfg)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert [type(m) for m in ours.children()] == [type(m) for m in theirs.children()]
    assert repr(getattr(ours, 'activate', None)) == repr(getattr(theirs, 'activate', None))
    # the same init: Kaiming-normal (fan-out) conv weights, unit norms
    assert abs(ours.conv.weight.std() / theirs.conv.weight.std() - 1) < 0.2
    if norm_cfg is not None:
        assert torch.equal(ours.norm.weight, torch.ones(6))
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 7, 9)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=0, rtol=0)


def test_vw_decoder_is_vw_head_without_mmseg():
    kwargs = dict(in_channels=[16, 32, 48, 64], channels=64, num_classes=5, nheads=2,
                  norm_cfg=dict(type='BN'))
    torch.manual_seed(0)
    head = VWHead(in_index=[0, 1, 2, 3], **kwargs)
    torch.manual_seed(0)
    decoder = VWDecoder(**kwargs)
    assert list(decoder.state_dict()) == list(head.state_dict())
    for a, b in zip(decoder.state_dict().values(), head.state_dict().values()):
        assert torch.equal(a, b)  # the same layers, built in the same order
    with torch.no_grad():
        for t in head.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if t.dim() == 1 else torch.randn_like(t) * 0.3)
    decoder.load_state_dict(head.state_dict())
    maps = [torch.randn(2, c, 32 // 2**i, 48 // 2**i) for i, c in enumerate(kwargs['in_channels'])]
    torch.testing.assert_close(decoder.eval()(maps), head.eval()(maps), atol=0, rtol=0)
