"""Bi-level routing attention: the fast path against the released gather, padding, routing."""
import pytest
import torch
import torch.nn.functional as F

import windowlab.projects.biformer  # noqa: F401  (registers the BiFormer layers)
from windowlab.projects.biformer.bra import (BiLevelRoutingAttention, from_regions, gather_attention,
                                   routed_attention, to_regions)
from windowlab.registry import LAYERS


def _bra(impl='fast', dtype=torch.float64, **kwargs):
    cfg = dict(type='BiLevelRoutingAttention', embed_dims=32, num_heads=2, n_win=4, topk=3,
               auto_pad=True, impl=impl)
    cfg.update(kwargs)
    torch.manual_seed(0)
    module = LAYERS.build(cfg).to(dtype)
    with torch.no_grad():  # non-zero biases so that padded tokens matter
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module


def _run(module, x, grad_out_seed=1):
    """Output, input gradient and parameter gradients for a random output cotangent."""
    module.zero_grad()
    x = x.detach().clone().requires_grad_()
    out = module(x)
    cotangent = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed),
                            dtype=out.dtype)
    (out * cotangent).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize('shape,kwargs', [
    ((2, 13, 10, 32), {}),  # padded to 16x12: partial and all-padding regions
    ((1, 8, 12, 32), dict(topk=16, num_heads=4)),  # every region routed, no padding
    ((2, 9, 7, 32), dict(qk_dims=16, topk=1)),  # narrower q/k than v
])
@pytest.mark.parametrize('layout', ['auto', 'blocks', 'dense'])
def test_fast_matches_gather_outputs_and_gradients(shape, kwargs, layout, monkeypatch):
    """Both layouts of the fast kernel (routed blocks, masked dense) in every case."""
    from windowlab.projects.biformer import bra
    if layout != 'auto':  # the routed fraction above which the dense layout is taken
        monkeypatch.setattr(bra, 'DENSE_MIN_ROUTED_FRACTION', 2.0 if layout == 'blocks' else 0.0)
    torch.manual_seed(2)
    x = torch.randn(shape, dtype=torch.float64)
    fast, gather = _bra('fast', **kwargs), _bra('gather', **kwargs)
    gather.load_state_dict(fast.state_dict())
    out_f, gx_f, gp_f = _run(fast, x)
    out_g, gx_g, gp_g = _run(gather, x)
    assert out_f.shape == x.shape
    torch.testing.assert_close(out_f, out_g, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx_f, gx_g, rtol=0, atol=1e-12)
    assert gp_f.keys() == gp_g.keys() and all(g.abs().max() > 0 for g in gp_f.values())
    for name in gp_f:
        torch.testing.assert_close(gp_f[name], gp_g[name], rtol=0, atol=1e-12, msg=name)


def test_fast_matches_gather_in_float32():
    x = torch.randn(2, 21, 19, 32)
    fast, gather = _bra('fast', torch.float32), _bra('gather', torch.float32)
    out_f, gx_f, gp_f = _run(fast, x)
    out_g, gx_g, gp_g = _run(gather, x)
    torch.testing.assert_close(out_f, out_g, rtol=0, atol=1e-5)
    torch.testing.assert_close(gx_f, gx_g, rtol=1e-4, atol=1e-5)
    for name in gp_f:
        torch.testing.assert_close(gp_f[name], gp_g[name], rtol=1e-4, atol=1e-4, msg=name)


def test_routed_attention_gradcheck():
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 4, 6, 8, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(2))  # 2x2 regions of 2x3 tokens
    v = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    region_idx = torch.randint(0, 4, (2, 4, 3), generator=g)
    assert torch.autograd.gradcheck(lambda q, k, v: routed_attention(q, k, v, region_idx, 2, 0.3),
                                    (q, k, v))


def test_routed_attention_equals_gather_on_repeated_regions():
    """Duplicate routed regions (exact ties) must accumulate gradients like the gather."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 4, 6, 8, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    region_idx = torch.tensor([[[0, 0], [1, 1], [3, 2], [2, 2]]])
    out_f = routed_attention(q, k, v, region_idx, 2, 0.5)
    grads_f = torch.autograd.grad(out_f.square().sum(), (q, k, v))
    out_g = gather_attention(to_regions(q, 2), to_regions(torch.cat([k, v], -1), 2), region_idx,
                             2, 0.5, 8)
    out_g = from_regions(out_g, 2, (2, 3))
    grads_g = torch.autograd.grad(out_g.square().sum(), (q, k, v))
    torch.testing.assert_close(out_f, out_g, rtol=0, atol=1e-12)
    for a, b in zip(grads_f, grads_g):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def _saved_bytes(module, x):
    """Bytes autograd keeps for backward inside ``module`` (distinct storages)."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x.requires_grad_())
    return sum(storages.values())


def test_fast_keeps_less_for_backward():
    x = torch.randn(2, 32, 32, 32)
    fast, gather = _bra('fast', torch.float32, topk=8), _bra('gather', torch.float32, topk=8)
    saved_fast, saved_gather = _saved_bytes(fast, x.clone()), _saved_bytes(gather, x.clone())
    # gather keeps topk copies of k/v and the [P, m, T, topk*T] probabilities
    assert saved_fast * 3 < saved_gather, (saved_fast, saved_gather)


def test_auto_pad_equals_explicit_zero_padding():
    """auto_pad == pad the (normalised) input with zeros, attend unpadded-mode, crop."""
    x = torch.randn(2, 13, 10, 32, dtype=torch.float64)
    padded = _bra(auto_pad=True)
    plain = _bra(auto_pad=False)
    plain.load_state_dict(padded.state_dict())
    expected = plain(F.pad(x, (0, 0, 0, 2, 0, 3)))[:, :13, :10]
    torch.testing.assert_close(padded(x), expected, rtol=0, atol=1e-12)
    # padded tokens carry the qkv bias, so they change the result vs. a smaller map
    with pytest.raises(ValueError, match='auto_pad=True'):
        plain(x)


def test_routing_picks_topk_of_region_means():
    module = _bra(auto_pad=False, topk=2)
    x = torch.randn(1, 8, 8, 32, dtype=torch.float64)
    out, region_idx = module(x, return_routing=True)
    q, k, _ = module.qkv(x).split([32, 32, 32], -1)
    q_means = q.view(1, 4, 2, 4, 2, 32).mean((2, 4)).reshape(1, 16, 32)
    k_means = k.view(1, 4, 2, 4, 2, 32).mean((2, 4)).reshape(1, 16, 32)
    scores = q_means @ k_means.transpose(1, 2) * 32 ** -0.5  # scale from the whole qk_dim
    assert torch.equal(region_idx.sort(-1).values, scores.topk(2, -1).indices.sort(-1).values)
    assert out.shape == x.shape


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match='topk'):
        BiLevelRoutingAttention(32, 2, n_win=2, topk=5)
    with pytest.raises(ValueError, match='impl'):
        BiLevelRoutingAttention(32, 2, impl='cuda')
    with pytest.raises(ValueError, match='divisible'):
        BiLevelRoutingAttention(30, 4)


def test_fast_under_autocast():
    """Mixed precision (the dense configs train with AMP): same routing, close results."""
    x = torch.randn(2, 13, 10, 32)
    fast, gather = _bra('fast', torch.float32), _bra('gather', torch.float32)
    results = []
    for module in (fast, gather):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out, region_idx = module(x.clone().requires_grad_(), return_routing=True)
        out.float().square().sum().backward()
        results.append((out.float(), region_idx, module.qkv.weight.grad.clone()))
    (out_f, idx_f, grad_f), (out_g, idx_g, grad_g) = results
    assert out_f.dtype == torch.float32 and torch.equal(idx_f, idx_g)
    torch.testing.assert_close(out_f, out_g, rtol=0.05, atol=0.05)
    torch.testing.assert_close(grad_f, grad_g, rtol=0.05, atol=0.5)
