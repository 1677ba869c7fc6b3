"""PolyViT, PolyTwins and PolySwin at their default initialisation, where LayerNorms (weight
1, bias 0) give every token the same norm and polyphase components tie in exact arithmetic:
the anchors follow the documented tie-break rule instead of float rounding, so

* an image alone and in a batch gives the same output,
* circular shifts give exactly consistent predictions,
* bfloat16 autocast agrees with float32 to bfloat16 precision.
"""
import logging

import pytest
import torch
from test_shift_equivariant import polytwins_classifier, polyvit_classifier, random_shifts
from test_shift_equivariant_swin import polyswin_classifier

import windowlab.projects.shift_equivariant  # noqa: F401
from windowlab.models.layers import polyphase

from windowlab.models.layers.polyphase import TIE_RTOL, AnchorRecorder

MODELS = {
    'polyvit': (lambda: polyvit_classifier(patch_size=16), 96),
    'polytwins': (polytwins_classifier, 224),
    'polyswin': (polyswin_classifier, 224),
}


def default_init(name):
    build, size = MODELS[name]
    torch.manual_seed(0)
    model = build()
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # init_weights lists every tensor
    model.init_weights()
    return model.eval(), size


def features(model, x):
    """Pooled backbone features (the default head is initialised near zero)."""
    with torch.no_grad(), AnchorRecorder() as rec:
        feats = model.extract_feat(x)[-1]
    return feats, rec.anchors


def images(n, size, seed):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('name', sorted(MODELS))
def test_same_image_alone_and_in_a_batch(name):
    model, size = default_init(name)
    x = images(5, size, seed=1)
    batch, batch_anchors = features(model, x)
    for b in range(5):
        alone, anchors = features(model, x[b:b + 1])
        assert torch.equal(anchors, batch_anchors[:, b:b + 1]), b
        torch.testing.assert_close(alone, batch[b:b + 1], rtol=0, atol=1e-5)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_circular_shifts_give_consistent_predictions(name):
    model, size = default_init(name)
    x = images(3, size, seed=2)
    ref, _ = features(model, x)
    for s in random_shifts(3, size, seed=3):
        shifted, _ = features(model, torch.roll(x, s, dims=(2, 3)))
        torch.testing.assert_close(shifted, ref, rtol=0, atol=1e-5)
    assert ref.std() > 0.1  # not a degenerate constant


def record_decisions(monkeypatch):
    """Record, per anchoring call, its input and the smallest relative lead of the largest
    polyphase norm over the runner-up (0 for exact ties)."""
    calls = []
    select = polyphase.select_anchors

    def recording(x, p, hw_dims=(2, 3), **kwargs):
        top2 = polyphase.polyphase_norms(x, p, hw_dims).topk(2, dim=1).values
        calls.append((x.detach().clone(), ((top2[:, 0] - top2[:, 1]) / top2[:, 0]).min().item()))
        return select(x, p, hw_dims, **kwargs)

    monkeypatch.setattr(polyphase, 'select_anchors', recording)
    return calls


@pytest.mark.parametrize('name', sorted(MODELS))
def test_bfloat16_autocast_agrees_with_float32(name, monkeypatch):
    """Under autocast, every anchor is the float32 one up to the first genuine near-tie: a
    float32 lead between TIE_RTOL and 2e-2 on an input that bfloat16 changed, which rounding
    legitimately decides (the documented floor). Exact ties (the tie rule) and clear leads
    agree; without a near-tie the whole output agrees to bfloat16 precision."""
    model, size = default_init(name)
    x = images(3, size, seed=4)
    calls = record_decisions(monkeypatch)
    ref, anchors = features(model, x)
    fp32_calls = list(calls)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low, low_anchors = features(model, x)
    bf16_calls = calls[len(fp32_calls):]
    decided = [TIE_RTOL > gap or gap > 2e-2 or torch.equal(x32, x16)
               for (x32, gap), (x16, _) in zip(fp32_calls, bf16_calls)] + [False]
    first_near_tie = decided.index(False)
    assert torch.equal(low_anchors[:first_near_tie], anchors[:first_near_tie])
    if name != 'polyvit':  # the tie rule was exercised on a rounded (bfloat16) input
        assert any(gap < TIE_RTOL and x32.dtype != x16.dtype for (x32, gap), (x16, _)
                   in zip(fp32_calls[:first_near_tie], bf16_calls))
    if first_near_tie == len(anchors):
        rel = ((low.float() - ref).norm() / ref.norm()).item()
        assert rel < 2e-2, rel  # bfloat16 has 8 significant bits (2**-8 = 3.9e-3 per rounding)
