"""Polyphase anchoring: selection rule, exact equivariance, exact autograd, dtypes, errors."""
import pytest
import torch
import torch.nn.functional as F

from windowlab.models.layers.polyphase import (TIE_RTOL, AnchorRecorder, PolyphaseAnchor,
                                               polyphase_anchor, polyphase_norms,
                                               roll_per_sample, select_anchors,
                                               tie_break_keys)


def brute_force_anchor(x, p):
    """The rule spelled out: loop over components, first strict maximum wins."""
    out = []
    for b in range(x.shape[0]):
        best, arg = -1.0, None
        for i in range(p):
            for j in range(p):
                n = x[b, :, i::p, j::p].double().norm().item()
                if n > best:
                    best, arg = n, (i, j)
        out.append(arg)
    return torch.tensor(out)


@pytest.mark.parametrize('p,hw', [(1, (5, 5)), (2, (8, 8)), (3, (9, 12)), (4, (16, 8)),
                                  (7, (14, 14)), (7, (7, 7))])
def test_anchor_is_max_norm_component_rolled_to_origin(p, hw):
    torch.manual_seed(p)
    x = torch.randn(3, 5, *hw)
    y, anchors = polyphase_anchor(x, p)
    assert torch.equal(anchors, brute_force_anchor(x, p))
    for b in range(3):
        i, j = anchors[b].tolist()
        assert torch.equal(y[b], torch.roll(x[b], (-i, -j), dims=(1, 2)))
        # the chosen component now sits at phase (0, 0)
        assert torch.equal(y[b, :, ::p, ::p], x[b, :, i::p, j::p])
    norms = polyphase_norms(x, p)
    assert norms.shape == (3, p * p)
    ref = torch.stack([x[:, :, i::p, j::p].flatten(1).norm(dim=1)
                       for i in range(p) for j in range(p)], 1)
    torch.testing.assert_close(norms, ref)


@pytest.mark.parametrize('p', [2, 3, 4, 7])
def test_exact_equivariance_under_circular_shifts(p):
    """anchor(roll(x, s)) == roll(anchor(x), k) with k = s + a - a' a multiple of p, exactly."""
    torch.manual_seed(0)
    h, w = 4 * p, 3 * p
    x = torch.randn(4, 3, h, w)
    y, a = polyphase_anchor(x, p)
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        s = torch.randint(-2 * h, 2 * h, (2,), generator=g)
        ys, a_s = polyphase_anchor(torch.roll(x, tuple(s.tolist()), dims=(2, 3)), p)
        assert torch.equal(a_s, (a + s) % p)
        k = s + a - a_s
        assert (k % p == 0).all()
        for b in range(4):
            assert torch.equal(ys[b], torch.roll(y[b], tuple(k[b].tolist()), dims=(1, 2)))
        # consequence: a stride-p op after anchoring sees the same grid, permuted by k / p
        weight = torch.randn(6, 3, p, p)
        z, zs = F.conv2d(y, weight, stride=p), F.conv2d(ys, weight, stride=p)
        for b in range(4):
            expected = torch.roll(z[b], tuple((k[b] // p).tolist()), dims=(1, 2))
            torch.testing.assert_close(zs[b], expected, rtol=0, atol=1e-5)
        assert (zs.mean((2, 3)) - z.mean((2, 3))).abs().max() < 1e-5


def test_plain_shift_is_not_equivariant_without_anchor():
    """Control: the stride-p conv without anchoring is not invariant (the test can fail)."""
    torch.manual_seed(0)
    x, weight = torch.randn(2, 3, 16, 16), torch.randn(6, 3, 4, 4)
    pooled = F.conv2d(x, weight, stride=4).mean((2, 3))
    shifted = F.conv2d(torch.roll(x, (1, 2), dims=(2, 3)), weight, stride=4).mean((2, 3))
    assert (pooled - shifted).abs().max() > 1e-2


def reference_tie_rule(x, p, rtol=TIE_RTOL):
    """The documented rule spelled out in float64 with Python loops: norms within ``rtol`` of
    the largest tie; among them the largest ramp-weighted sum (within ``rtol`` of its
    Cauchy-Schwarz bound) wins; then the first row-major index."""
    out = []
    for b in range(x.shape[0]):
        comps = [x[b, :, i::p, j::p].double() for i in range(p) for j in range(p)]
        norms = [c.norm().item() for c in comps]
        ramp = torch.arange(1, x.shape[1] + 1, dtype=torch.float64)
        n = comps[0][0].numel()
        bound = ramp.norm().item() * n ** 0.5 * max(norms)
        keys = [(c.sum(dim=(1, 2)) @ ramp).item() / bound for c in comps]
        tied = [k for k in range(p * p) if norms[k] >= max(norms) * (1 - rtol)]
        best_key = max(keys[k] for k in tied)
        k = next(k for k in tied if keys[k] >= best_key - rtol)
        out.append((k // p, k % p))
    return torch.tensor(out)


def layer_norm_map(b, c, h, w, seed=0):
    """Channel-first maps whose tokens all have the same norm (LayerNorm at default init):
    every polyphase component ties in exact arithmetic."""
    x = torch.randn(b, h, w, c, generator=torch.Generator().manual_seed(seed))
    return F.layer_norm(x, (c,)).permute(0, 3, 1, 2)


def test_ties_are_broken_by_the_documented_rule():
    # equal norms: the larger ramp-weighted sum wins, not the first index
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 1, 2] = -5.0  # component (1, 2) of p=3
    x[0, 0, 2, 0] = 5.0  # component (2, 0): same norm, larger key
    assert select_anchors(x, 3).tolist() == [[2, 0]]
    # equal norms and keys (a constant map): the first index
    assert select_anchors(torch.ones(2, 3, 8, 8), 4).tolist() == [[0, 0], [0, 0]]
    # a lead above the tolerance keeps the largest norm (the official rule)
    x[0, 0, 1, 2] = -5.0 * (1 + 3 * TIE_RTOL)
    assert select_anchors(x, 3).tolist() == [[1, 2]]
    # a lead below it is a tie
    x[0, 0, 1, 2] = -5.0 * (1 + TIE_RTOL / 3)
    assert select_anchors(x, 3).tolist() == [[2, 0]]
    for p in (2, 3, 7):
        x = layer_norm_map(4, 16, 2 * p, 3 * p, seed=p)
        norms = polyphase_norms(x.double(), p)
        assert (1 - norms.amin(1) / norms.amax(1)).max() < TIE_RTOL / 10  # all tie
        assert torch.equal(select_anchors(x, p), reference_tie_rule(x, p))


@pytest.mark.parametrize('p', [2, 4, 7])
def test_tied_maps_anchor_covariantly_whatever_the_rounding(p):
    """LayerNorm outputs tie exactly; the anchor must follow circular shifts and not depend
    on the batch, the precision or the memory layout (which change the float rounding)."""
    x = layer_norm_map(6, 32, 4 * p, 4 * p, seed=p)
    a = select_anchors(x, p)
    g = torch.Generator().manual_seed(1)
    for _ in range(6):
        s = torch.randint(-4 * p, 4 * p, (2,), generator=g)
        shifted = torch.roll(x, tuple(s.tolist()), dims=(2, 3))
        assert torch.equal(select_anchors(shifted, p), (a + s) % p)
    for b in range(6):
        assert torch.equal(select_anchors(x[b:b + 1], p), a[b:b + 1])
    assert torch.equal(select_anchors(x.permute(0, 2, 3, 1).contiguous(), p, (1, 2)), a)
    assert torch.equal(select_anchors(x.double(), p), a)
    assert torch.equal(select_anchors(x.bfloat16(), p), a)  # ties within bfloat16's rounding


def test_tie_break_keys_are_bounded_and_shift_invariant():
    x = layer_norm_map(2, 8, 8, 8)
    keys = tie_break_keys(x, 4)
    assert keys.shape == (2, 16) and keys.abs().max() <= 1
    shifted = tie_break_keys(torch.roll(x, (4, -8), dims=(2, 3)), 4)  # grid rolls only
    torch.testing.assert_close(shifted, keys, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the static size check
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated
def test_selection_traces_without_python_branching():
    x = layer_norm_map(2, 8, 8, 8)
    traced = torch.jit.trace(lambda t: select_anchors(t, 4), (x,))
    y = layer_norm_map(3, 8, 8, 8, seed=5)
    assert torch.equal(traced(y), select_anchors(y, 4))


def test_channel_last_matches_channel_first():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 14, 21)
    y, a = polyphase_anchor(x, 7)
    y2, a2 = polyphase_anchor(x.permute(0, 2, 3, 1), 7, hw_dims=(1, 2))
    assert torch.equal(a, a2)
    assert torch.equal(y2.permute(0, 3, 1, 2), y)


@pytest.mark.parametrize('p,hw', [(2, (4, 6)), (3, (6, 3))])
def test_gradcheck_float64(p, hw):
    torch.manual_seed(0)
    x = torch.randn(2, 2, *hw, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: polyphase_anchor(t, p)[0], (x,))


def test_gradient_is_the_inverse_roll():
    """The official Swin copy's backward is off by up to 5.97; ours is the exact inverse roll."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    y, a = polyphase_anchor(x, 4)
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, g)
    for b in range(2):
        assert torch.equal(grad[b], torch.roll(g[b], tuple(a[b].tolist()), dims=(1, 2)))


@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16, torch.float16])
def test_dtype_is_preserved(dtype):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    y, a = polyphase_anchor(x.to(dtype), 4)
    assert y.dtype == dtype and y.device == x.device
    for b in range(2):
        assert torch.equal(y[b], torch.roll(x.to(dtype)[b], tuple((-a[b]).tolist()), (1, 2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    y, a = polyphase_anchor(x, 4)
    yc, ac = polyphase_anchor(x.cuda(), 4)
    assert yc.is_cuda and torch.equal(ac.cpu(), a) and torch.equal(yc.cpu(), y)


def test_roll_per_sample_matches_torch_roll():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 7)
    shifts = torch.tensor([[1, -2], [0, 0], [-6, 9]])
    out = roll_per_sample(x, shifts)
    for b in range(3):
        assert torch.equal(out[b], torch.roll(x[b], tuple(shifts[b].tolist()), dims=(1, 2)))


def test_clear_errors():
    with pytest.raises(ValueError, match='multiples of p'):
        polyphase_anchor(torch.randn(1, 3, 10, 12), 4)
    with pytest.raises(ValueError, match='>= 1'):
        polyphase_anchor(torch.randn(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match='hw_dims'):
        polyphase_anchor(torch.randn(1, 3, 8, 8), 2, hw_dims=(0, 2))


def test_recorder_and_module():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 12)
    layer = PolyphaseAnchor(3)
    with AnchorRecorder() as outer:
        y = layer(x)
        with AnchorRecorder() as inner:
            polyphase_anchor(y, 2)
    polyphase_anchor(x, 4)  # outside: not recorded
    assert outer.factors == [(3, 3), (2, 2)] and outer.sizes == [(12, 12), (12, 12)]
    assert len(inner.calls) == 1
    assert outer.anchors.shape == (2, 2, 2)
    assert torch.equal(outer.anchors[0], select_anchors(x, 3))
    # the second call sees an already anchored map of p=3, which says nothing about p=2
    assert torch.equal(outer.anchors[1], select_anchors(y, 2))
