"""VWFormer: varying window attention and the VWHead decode head (projects/vwformer)."""
import runpy
import sys

import pytest
import torch
import torch.nn.functional as F

import windowlab.projects.vwformer  # noqa: F401  (registers VWHead and VaryingWindowAttention)
from conftest import REPO, assert_control, assert_moves, random_state_dict
from windowlab.projects.vwformer import VaryingWindowAttention, VWHead
from windowlab.converters import unwrap_state_dict
from windowlab.projects.vwformer.converter import convert_vwformer, convert_vwhead_key
from windowlab.registry import LAYERS

FULL_SIZE = dict(in_channels=[96, 192, 384, 768], in_index=[0, 1, 2, 3], channels=512,
                 num_classes=150, norm_cfg=dict(type='BN', requires_grad=True))
SMALL = dict(in_channels=[16, 32, 48, 64], in_index=[0, 1, 2, 3], channels=64,
             num_classes=5, norm_cfg=dict(type='BN', requires_grad=True))


def features(image_hw, channels, batch=1, seed=0):
    """Random backbone maps of an image at strides 4/8/16/32 (ceil, as stride-2 convs)."""
    g = torch.Generator().manual_seed(seed)
    h, w = image_hw
    out = []
    for level, c in enumerate(channels):
        s = 4 * 2**level
        out.append(torch.randn(batch, c, -(-h // s), -(-w // s), generator=g))
    return out


def randomize(module, seed=0):
    """Non-degenerate weights everywhere (the zero-initialised output norms included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith(('running_var', 'norm.weight', 'bn.weight')):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return module


@pytest.fixture
def official(parity_fixture):
    fx = parity_fixture('vwformer_head')
    state_dict = fx.load('official.pth')['state_dict']
    head_sd = unwrap_state_dict(convert_vwformer(state_dict), prefix='decode_head')
    return fx, head_sd, fx.load('input.pt'), fx.load('expected.pt')


def build_official(fx, head_sd, **overrides):
    head = VWHead(**{**fx.spec['constructor_kwargs'], **overrides})
    head.load_state_dict(head_sd, strict=True)
    return head.eval()


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize('output, overrides', [
    ('seg_logits', {}),
    ('seg_logits_nheads2', dict(nheads=2)),
    ('seg_logits_short_cut_false', dict(short_cut=False)),
])
def test_fixture_logits(official, output, overrides):
    """Converted official weights + spec constructor (SyncBN as in spec) reproduce the logits."""
    fx, head_sd, inputs, expected = official
    head = build_official(fx, head_sd, **overrides)
    with torch.no_grad():
        logits = head(inputs)
    # stride-4 logits, before any resize
    assert logits.shape == expected[output].shape == (
        inputs[0].shape[0], fx.kwargs['num_classes'], *inputs[0].shape[2:])
    torch.testing.assert_close(logits, expected[output], atol=fx.atol, rtol=0)


def test_fixture_intermediates(official):
    """The fused stride-8 map and the five branches (short path, image pool, VWA x3; the
    official head concatenates them, the pool upsampled to a constant map) match the official."""
    fx, head_sd, inputs, expected = official
    head = build_official(fx, head_sd)
    seen = {}
    for name in ('short_path', 'image_pool', 'attn.0', 'attn.1', 'attn.2'):
        head.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: seen.update({name: out}))
    with torch.no_grad():
        fused = head.aggregate(head._transform_inputs(inputs))
        head(inputs)
    torch.testing.assert_close(fused, expected['mlp_decoder_out'], atol=fx.atol, rtol=0)
    branches = list(seen.values())
    branches[1] = branches[1].expand_as(branches[0])
    torch.testing.assert_close(torch.cat(branches, dim=1), expected['cat_input'], atol=fx.atol,
                               rtol=0)


def logits_move(head, inputs, expected):
    with torch.no_grad():
        return (head(inputs) - expected['seg_logits']).abs().max().item()


def test_fixture_branches_matter(official):
    """Guard against a vacuous fixture: each VWA branch and the shortcut change the logits;
    all three branches off (their output BN zeroed) is the spec's recorded control."""
    fx, head_sd, inputs, expected = official
    for j in range(3):
        head = build_official(fx, head_sd)
        with torch.no_grad():
            head.attn[j].out_proj.bn.weight.zero_()
            head.attn[j].out_proj.bn.bias.zero_()
        assert_moves(fx, logits_move(head, inputs, expected), f'dropping VWA branch {j}')
    assert_moves(fx, logits_move(build_official(fx, head_sd, short_cut=False), inputs, expected),
                 'short_cut=False')
    head = build_official(fx, head_sd)
    with torch.no_grad():
        for attn in head.attn:
            attn.out_proj.bn.weight.zero_()
            attn.out_proj.bn.bias.zero_()
    assert_control(fx, 'zero_vwa_conv_out_bn', logits_move(head, inputs, expected))


def test_fixture_fusion_order_matters(official):
    """Control: concatenating the levels as [c2, c3, c4] (not [c4, c3, c2]) with the official
    weights = our model with the fuse conv's three input blocks reversed."""
    fx, head_sd, inputs, expected = official
    head = build_official(fx, head_sd)
    weight = head.fuse.conv.weight
    with torch.no_grad():
        weight.copy_(torch.cat(weight.chunk(3, dim=1)[::-1], dim=1))
    assert_control(fx, 'fusion_concat_order_c2_c3_c4', logits_move(head, inputs, expected))


# --------------------------------------------------------------------------- checkpoints
def test_full_size_listing_converts_and_loads_strictly(key_listing):
    listing = key_listing('vwhead_swin_t_ade20k.json')['keys']
    converted = convert_vwformer(random_state_dict(listing))
    head = VWHead(**FULL_SIZE)
    own = head.state_dict()
    head_sd = unwrap_state_dict(converted, prefix='decode_head')
    assert sorted(head_sd) == sorted(own)
    head.load_state_dict(head_sd, strict=True)
    assert torch.equal(head.attn[2].pre_scale.conv.weight,
                       converted['decode_head.attn.2.pre_scale.conv.weight'])
    assert tuple(head.attn[2].pre_scale.conv.weight.shape) == (8, 512, 8, 8)


def test_full_size_parameter_count():
    head = VWHead(**FULL_SIZE)
    assert sum(p.numel() for p in head.parameters()) == 7_624_726


def test_converter_keeps_other_keys_and_rejects_unknown_head_keys():
    sd = {'backbone.stages.0.x': torch.zeros(1), 'decode_head.cat.conv.weight': torch.zeros(1)}
    out = convert_vwformer(sd)
    assert set(out) == {'backbone.stages.0.x', 'decode_head.bottleneck.conv.weight'}
    assert convert_vwhead_key('linear_c4.proj.bias') == 'level_projs.2.bias'
    assert convert_vwhead_key('ds.1.bn.running_var') == 'attn.1.pre_scale.bn.running_var'
    assert convert_vwhead_key('attn.0.g.conv.weight') == 'attn.0.value.weight'
    with pytest.raises(KeyError, match='VWCityHead'):
        convert_vwformer({'decode_head.linear_c4.conv.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='decode_head'):
        convert_vwformer({'backbone.x': torch.zeros(1)})


def test_cli_converts_fixture(parity_fixture, tmp_path, monkeypatch):
    fx = parity_fixture('vwformer_head')
    dst = tmp_path / 'vw.pth'
    cli = REPO / 'tools' / 'model_converters' / 'vwformer2windowlab.py'
    monkeypatch.setattr(sys, 'argv', [str(cli), str(fx.path('official.pth')), str(dst)])
    runpy.run_path(str(cli), run_name='__main__')
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['converter'] == 'vwformer2windowlab'
    head = VWHead(**fx.spec['constructor_kwargs'])
    head.load_state_dict(unwrap_state_dict(ckpt, prefix='decode_head'), strict=True)
    head.eval()
    with torch.no_grad():
        logits = head(fx.load('input.pt'))
    torch.testing.assert_close(logits, fx.load('expected.pt')['seg_logits'], atol=fx.atol, rtol=0)


# --------------------------------------------------------------------------- any input size
@pytest.mark.parametrize('image_hw', [(250, 330), (200, 72), (40, 56)])
def test_any_input_size(image_hw):
    """Stride-8 maps not divisible by 8 (and smaller than the 8x8 grid) work, with gradients."""
    head = randomize(VWHead(**SMALL))
    inputs = features(image_hw, SMALL['in_channels'], batch=2)
    assert inputs[1].shape[2] % 8 or inputs[1].shape[3] % 8
    logits = head(inputs)
    assert logits.shape == (2, 5, *inputs[0].shape[2:])
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    # 40x56 pads the 5x7 stride-8 map to 8x8: 1-token windows, where the softmax over a
    # single key is constant 1 and query/key get no gradient (correctly).
    # The key bias shifts all logits of a query equally, so it never gets a gradient (as in
    # the official model).
    one_token = inputs[1].shape[2] <= 8 and inputs[1].shape[3] <= 8
    for name, p in head.named_parameters():
        if name.endswith('key.bias'):
            assert p.grad.abs().max() < 1e-5, name
        elif one_token and name.endswith(('query.weight', 'query.bias', 'key.weight')):
            assert p.grad.abs().max() < 1e-7, name  # 0 up to the fused kernel's rounding
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('num_heads, hw', [(1, (21, 30)), (2, (13, 8)), (4, (5, 3))])
def test_vwa_padding_is_zero_pad_and_crop(num_heads, hw):
    """On a map whose sides are not multiples of 8, VWA equals the padding-free (official)
    path on the bottom/right zero-padded map, cropped back."""
    attn = randomize(VaryingWindowAttention(64, ratio=4, num_heads=num_heads)).eval()
    x = torch.randn(2, 64, *hw)
    padded = F.pad(x, (0, (-hw[1]) % 8, 0, (-hw[0]) % 8))
    with torch.no_grad():
        out, ref = attn(x), attn(padded)[..., :hw[0], :hw[1]]
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # The zero padding is seen by the context windows: it is not a no-op.
    with torch.no_grad():
        assert (attn(F.pad(x, (0, (-hw[1]) % 8, 0, (-hw[0]) % 8), value=1.0))[..., :hw[0], :hw[1]]
                - out).abs().max() > 1e-3


def test_batch_elements_stay_separate(official):
    """The fixture has batch 1: check that windows of different images never mix."""
    fx, head_sd, inputs, expected = official
    head = build_official(fx, head_sd, nheads=2)
    flipped = [x.flip(-1) for x in inputs]
    with torch.no_grad():
        batched = head([torch.cat([a, b]) for a, b in zip(inputs, flipped)])
        torch.testing.assert_close(batched[:1], expected['seg_logits_nheads2'], atol=fx.atol,
                                   rtol=0)
        torch.testing.assert_close(batched[1:], head(flipped), atol=1e-5, rtol=0)


def test_vwa_is_local():
    """A query window only sees its context window: changing a far corner leaves it intact."""
    attn = randomize(VaryingWindowAttention(16, ratio=2)).eval()
    x = torch.randn(1, 16, 32, 32)  # 4x4 windows; ratio-2 context spans 8x8 around each
    y = x.clone()
    y[..., 24:, 24:] += 5
    with torch.no_grad():
        a, b = attn(x), attn(y)
    torch.testing.assert_close(a[..., :8, :8], b[..., :8, :8], atol=0, rtol=0)
    assert (a[..., 24:, 24:] - b[..., 24:, 24:]).abs().max() > 1e-2


# --------------------------------------------------------------------------- init, norms, errors
@pytest.mark.parametrize('short_cut', [True, False])
def test_vwa_output_norm_starts_at_zero(short_cut):
    attn = VaryingWindowAttention(64, ratio=8, short_cut=short_cut)
    attn.init_weights()
    assert torch.count_nonzero(attn.out_proj.bn.weight) == 0
    x = torch.randn(2, 64, 16, 24)
    out = attn(x)
    torch.testing.assert_close(out, x if short_cut else torch.zeros_like(x), atol=0, rtol=0)


def test_head_init_weights_zeroes_every_vwa_output():
    head = VWHead(**SMALL)
    head.init_weights()
    for attn in head.attn:
        assert torch.count_nonzero(attn.out_proj.bn.weight) == 0
    assert torch.count_nonzero(head.fuse.bn.weight) == head.channels


@pytest.mark.parametrize('norm, cls', [('BN', torch.nn.BatchNorm2d),
                                       ('SyncBN', torch.nn.SyncBatchNorm),
                                       ('GN', torch.nn.GroupNorm)])
def test_norms_follow_norm_cfg(norm, cls):
    norm_cfg = dict(type=norm, requires_grad=True)
    if norm == 'GN':
        norm_cfg['num_groups'] = 1
    head = VWHead(**{**SMALL, 'norm_cfg': norm_cfg})
    norm_types = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
    norms = [m for m in head.modules() if isinstance(m, norm_types)]
    # fuse, short_path, image_pool, 3 pre_scale, 3 out_proj, bottleneck, low_level_fuse
    assert len(norms) == 11 and all(isinstance(m, cls) for m in norms)


def test_errors_name_the_problem():
    head = VWHead(**SMALL)
    inputs = features((128, 128), SMALL['in_channels'])
    with pytest.raises(ValueError, match='4 levels'):
        head(inputs[:3])
    bad = list(inputs)
    bad[2] = torch.randn(1, 40, 8, 8)
    with pytest.raises(ValueError, match=r'level 2 .*\[B, 48, H, W\].*in_channels'):
        head(bad)
    with pytest.raises(ValueError, match='exactly 4 feature levels'):
        VWHead(**{**SMALL, 'in_channels': [32, 48, 64], 'in_index': [0, 1, 2]})
    with pytest.raises(ValueError, match='divisible by 64'):
        VWHead(**{**SMALL, 'channels': 96})
    with pytest.raises(ValueError, match='multiple_select'):
        VWHead(**SMALL, input_transform='resize_concat')
    with pytest.raises(ValueError, match='num_heads'):
        VaryingWindowAttention(64, ratio=2, num_heads=3)


# --------------------------------------------------------------------------- mmseg integration
def test_builds_from_registries_and_trains():
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    attn = LAYERS.build(dict(type='VaryingWindowAttention', embed_dims=64, ratio=2))
    assert isinstance(attn, VaryingWindowAttention)
    head = MODELS.build(dict(type='VWHead', short_cut=True, nheads=2, **SMALL))
    assert isinstance(head, VWHead)
    randomize(head)
    inputs = features((96, 120), SMALL['in_channels'], batch=2)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(96, 120), pad_shape=(96, 120)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 96, 120)))
        samples.append(s)
    opt = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        loss = head.loss(inputs, samples, train_cfg={})['loss_ce']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_head_costs_far_less_than_upernet():
    """The paper's efficiency claim, head only: VWHead < 1/4 of UPerHead's FLOPs and params
    on Swin-T maps (FLOPs counted by mmengine's FlopAnalyzer, attention matmuls included)."""
    from mmseg.registry import MODELS

    from windowlab.analysis import flop_analyzer

    class ListInput(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def forward(self, *x):
            return self.head(list(x))

    cfg = dict(FULL_SIZE, in_channels=[96, 192, 384, 768])
    vw = MODELS.build(dict(type='VWHead', **cfg)).eval()
    upernet = MODELS.build(dict(type='UPerHead', pool_scales=(1, 2, 3, 6), **cfg)).eval()
    inputs = tuple(features((256, 256), cfg['in_channels']))
    flops = {}
    for name, head in [('vw', vw), ('upernet', upernet)]:
        analyzer = flop_analyzer(ListInput(head), inputs)
        flops[name] = analyzer.total()
        if name == 'vw':  # the window attention is counted
            assert analyzer.by_operator()['scaled_dot_product_attention'] > 0
    assert flops['vw'] < flops['upernet'] / 4
    assert sum(p.numel() for p in vw.parameters()) < sum(
        p.numel() for p in upernet.parameters()) / 4
