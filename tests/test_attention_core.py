"""The one attention core (windowlab.models.layers.attention): both paths compute the softmax
attention of the papers, and every family goes through it, with the same numbers on both paths."""
import pytest
import torch
import torch.nn.functional as F
from test_dropin_backbones import BACKBONES, NAMES, build
from test_vwformer import SMALL, features, randomize

from windowlab.models.layers import attention
from windowlab.models.layers.attention import attend, attention_impl
from windowlab.projects.vwformer import VWHead


def softmax_attention(q, k, v, bias, scale):
    """The definition, written out: ``sum_j exp(l_ij) v_j / sum_j exp(l_ij)``."""
    logits = torch.einsum('...ld,...sd->...ls', q, k) * scale + bias
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    return torch.einsum('...ls,...sd->...ld', weights / weights.sum(-1, keepdim=True), v)


@pytest.mark.parametrize('impl', attention.IMPLS)
def test_both_paths_compute_softmax_attention(impl):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64)
    k = torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    bias = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)  # per head, broadcast
    with attention_impl(impl):
        out = attend(q, k, v, bias, scale=0.7)
        out_default_scale = attend(q, k, v)
    assert (out - softmax_attention(q, k, v, bias, 0.7)).abs().max() < 1e-13
    assert (out_default_scale - softmax_attention(q, k, v, 0, 0.5)).abs().max() < 1e-13


@pytest.mark.parametrize('impl', attention.IMPLS)
def test_boolean_mask_keeps_the_true_keys_only(impl):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    keep = torch.rand(2, 1, 6, 6, generator=g) < 0.5
    keep[..., 0] = True
    with attention_impl(impl):
        out = attend(q, k, v, keep)
    for b, h, i in [(0, 0, 0), (1, 2, 5), (0, 1, 3)]:
        cols = keep[b, 0, i].nonzero().flatten()  # attention over the kept keys alone
        expected = softmax_attention(q[b, h, i:i + 1], k[b, h, cols], v[b, h, cols], 0, 0.5)
        assert (out[b, h, i] - expected[0]).abs().max() < 1e-13


def test_unknown_path_is_refused():
    with pytest.raises(ValueError, match="one of \\('fused', 'reference'\\)"):
        attention_impl('flash')


def _counting_sdpa(monkeypatch):
    calls, fused = [], F.scaled_dot_product_attention

    def sdpa(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(attention.F, 'scaled_dot_product_attention', sdpa)
    return calls


def _family(name):
    """``(model, input)``: a tiny member of the family with non-degenerate float64 weights."""
    if name == 'vwhead':
        maps = [t.double() for t in features((64, 96), SMALL['in_channels'])]
        return randomize(VWHead(**SMALL)).double().eval(), maps
    model, side = build(name)
    randomize(model)  # VSA's zero-initialised window regression included
    return model.double().eval(), torch.randn(2, 3, side, 2 * side, dtype=torch.float64)


def _run(model, x):
    """Outputs and input gradients of ``sum(out**2)``."""
    x = [t.double().requires_grad_() for t in (x if isinstance(x, list) else [x])]
    outs = model(x if len(x) > 1 else x[0])
    outs = [outs] if isinstance(outs, torch.Tensor) else list(outs)
    sum(o.square().sum() for o in outs).backward()
    return [o.detach() for o in outs] + [t.grad for t in x]


@pytest.mark.parametrize('name', [n for n in NAMES if n != 'biformer'] + ['vwhead'])
def test_every_family_gives_the_same_numbers_on_both_paths(name, monkeypatch):
    """float64, random weights, non-square maps: fused and reference agree to 1e-10 (outputs
    without autograd, where the fused kernel always runs, and outputs and input gradients with
    it), and the reference path never calls the fused kernel. BiFormer: below."""
    model, x = _family(name)
    calls = _counting_sdpa(monkeypatch)
    results = {}
    for impl in attention.IMPLS:
        calls.clear()
        with attention_impl(impl):
            with torch.no_grad():
                outs = model(x)
            results[impl] = list(outs if isinstance(outs, tuple) else [outs]) + _run(model, x)
        assert bool(calls) == (impl == 'fused'), f'{name}: {len(calls)} fused calls ({impl})'
    for a, b in zip(results['fused'], results['reference'], strict=True):
        assert (a - b).abs().max() < 1e-10 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize('auto_pad', [False, True])
def test_biformer_routed_and_global_attention_give_the_same_numbers_on_both_paths(
        auto_pad, monkeypatch):
    model, side = build('biformer', auto_pad=auto_pad)
    model = randomize(model).double().eval()
    x = torch.randn(2, 3, side, side + 32 if auto_pad else side)
    calls = _counting_sdpa(monkeypatch)
    fused = _run(model, x)
    # every block (routed in stages 1-3, global in 4), and the routed ones again in backward
    assert len(calls) == sum(model.depths) + sum(model.depths[:3])
    with attention_impl('reference'):
        reference = _run(model, x)
    for a, b in zip(fused, reference, strict=True):
        assert (a - b).abs().max() < 1e-10 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize('name', ['swin', 'swin_vsa', 'vitaev2_vsa', 'polyswin'])
def test_fused_kernel_gives_the_bias_gradients_of_the_reference(name, monkeypatch):
    """The fused kernel with a trainable relative-position bias (its path on GPUs; on CPU the
    plain ops run, see below): outputs and every parameter's gradient equal the reference's."""
    monkeypatch.setattr(attention, '_needs_bias_grad_on_cpu', lambda q, bias: False)
    model, x = _family(name)
    calls = _counting_sdpa(monkeypatch)
    grads = {}
    for impl in attention.IMPLS:
        model.zero_grad()
        with attention_impl(impl):
            _run(model, x)
        grads[impl] = {n: p.grad for n, p in model.named_parameters()}
    assert calls
    bias_grads = [n for n, g in grads['fused'].items() if 'rel_pos' in n and g.abs().max() > 0]
    assert bias_grads
    for n, g in grads['reference'].items():
        assert (grads['fused'][n] - g).abs().max() < 1e-10 * max(1.0, g.abs().max().item()), n


def test_a_trainable_bias_on_cpu_takes_the_plain_ops(monkeypatch):
    """PyTorch's fused CPU kernel has no gradient for the mask (its math fallback is slower
    than the plain ops): with a bias that needs a gradient the fused path runs the plain ops,
    without one the fused kernel."""
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    bias = torch.randn(3, 5, 5, requires_grad=True)
    calls = _counting_sdpa(monkeypatch)
    attend(q, k, v, bias)
    assert not calls
    with torch.no_grad():
        attend(q, k, v, bias)
    attend(q, k, v, bias.detach())
    assert len(calls) == 2


def test_recomputation_in_backward_takes_the_path_of_the_forward():
    """Activation checkpointing (``with_cp``, the fast BRA) recomputes the forward in backward:
    it must take the forward's path even when backward runs outside ``attention_impl``."""
    model, side = build('biformer', with_cp=True)
    model = randomize(model).double().train()
    x = torch.randn(1, 3, side, side, dtype=torch.float64, requires_grad=True)
    with attention_impl('reference'):
        model(x)[-1].square().sum().backward()  # the reference graph, also in backward
    grad_in_context = x.grad.clone()
    x.grad = None
    with attention_impl('reference'):
        out = model(x)[-1].square().sum()
    out.backward()  # backward (with its recomputation) outside the context
    assert torch.equal(x.grad, grad_in_context)
