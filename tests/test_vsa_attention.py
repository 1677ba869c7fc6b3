"""VSAWindowAttention: plain-window equivalence, window regression semantics, any input size."""
import pytest
import torch
import torch.nn.functional as F

import windowlab.projects.vsa  # noqa: F401  (registers VSAWindowAttention)
from windowlab.registry import LAYERS


def build(**kwargs):
    cfg = dict(type='VSAWindowAttention', embed_dims=16, num_heads=2, window_size=7)
    cfg.update(kwargs)
    return LAYERS.build(cfg)


def randomise(module, seed=0, regression=True):
    """Non-degenerate weights everywhere (the regression convs only if ``regression``)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if not regression and name.startswith('sampling_'):
            continue
        p.data = torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.2)
    return module


def plain_window_attention(attn, x, hw_shape, shift_kv=(0, 0)):
    """Reference: non-shifted window attention with VSA's padding (after the qkv projection).

    ``shift_kv=(dy, dx)`` takes every window's keys/values from the pixels ``(dy, dx)`` further
    down/right (zeros beyond the padded map) -- what a pure offset of that size must do.
    """
    b, n, _ = x.shape
    h, w = hw_shape
    ws, heads = attn.window_size, attn.num_heads
    d = attn.out_dims // heads
    top, bottom, left, right = attn._pads(h, w)
    hp, wp = h + top + bottom, w + left + right
    qkv = attn.qkv(x).view(b, h, w, 3 * heads * d).permute(0, 3, 1, 2)
    qkv = F.pad(qkv, (left, right, top, bottom)).view(b, 3, heads, d, hp, wp)
    q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
    dy, dx = shift_kv
    k = F.pad(k, (0, dx, 0, dy))[..., dy:, dx:]
    v = F.pad(v, (0, dx, 0, dy))[..., dy:, dx:]

    def windows(t):  # [b, heads, d, hp, wp] -> [b * nW, heads, ws*ws, d]
        t = t.reshape(b, heads, d, hp // ws, ws, wp // ws, ws)
        return t.permute(0, 3, 5, 1, 4, 6, 2).reshape(-1, heads, ws * ws, d)

    q, k, v = windows(q), windows(k), windows(v)
    logits = q @ k.transpose(-2, -1) * attn.scale + attn.rel_pos().unsqueeze(0)
    out = logits.softmax(-1) @ v
    out = out.view(b, hp // ws, wp // ws, heads, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6)
    out = out.reshape(b, hp, wp, heads * d)[:, top:top + h, left:left + w]
    return attn.proj(out.reshape(b, n, heads * d))


@pytest.mark.parametrize('pad_mode', ['bottom_right', 'symmetric'])
@pytest.mark.parametrize('hw', [(14, 21), (10, 13), (3, 5)])
def test_zero_regression_is_plain_window_attention(pad_mode, hw):
    attn = randomise(build(pad_mode=pad_mode), regression=False).eval()
    assert all((p == 0).all() for n, p in attn.named_parameters() if n.startswith('sampling_'))
    x = torch.randn(2, hw[0] * hw[1], 16)
    with torch.no_grad():
        out = attn(x, hw)
        ref = plain_window_attention(attn, x, hw)
    assert out.shape == (2, hw[0] * hw[1], 16)
    diff = (out - ref).abs().max().item()
    assert diff < 5e-5, diff


def test_zero_regression_matches_core_window_msa():
    """Same weights in the core's (non-shifted) WindowMSA give the same output."""
    msa_cls = LAYERS.get('WindowMSA')
    if msa_cls is None:
        pytest.skip('core WindowMSA not available')
    attn = randomise(build(), regression=False).eval()
    msa = msa_cls(embed_dims=16, num_heads=2, window_size=7, shift_size=0).eval()
    msa.qkv.load_state_dict(attn.qkv.state_dict())
    msa.proj.load_state_dict(attn.proj.state_dict())
    msa.rel_pos.load_state_dict(attn.rel_pos.state_dict())
    x = torch.randn(2, 14 * 21, 16)
    with torch.no_grad():
        diff = (attn(x, (14, 21)) - msa(x, (14, 21))).abs().max().item()
    assert diff < 5e-5, diff


@pytest.mark.parametrize('swap', [False, True])
def test_offset_moves_window_by_its_normalised_size(swap):
    """A pure x-offset of one window (in normalised units) samples the next window's k/v.

    The raw offset is divided by the number of windows along x (``W // ws``), or along y
    when ``swap_offset_norm`` (the official detection code), so the same raw value moves
    the window by one window only with the right divisor.
    """
    h, w, ws = 14, 28, 7
    attn = randomise(build(swap_offset_norm=swap), regression=False).eval()
    one_window = 2 * ws / (w - 1)              # normalised distance of 7 pixels along x
    divisor = (h if swap else w) // ws
    with torch.no_grad():
        attn.sampling_offsets.bias.view(2, 2)[:, 0] = one_window * divisor
    x = torch.randn(1, h * w, 16)
    with torch.no_grad():
        out = attn(x, (h, w))
        ref = plain_window_attention(attn, x, (h, w), shift_kv=(0, ws))
        unshifted = plain_window_attention(attn, x, (h, w))
    assert (out - ref).abs().max() < 1e-4
    assert (out - unshifted).abs().max() > 1e-2


def test_scale_grows_the_window():
    """Scale s = 1 doubles the sampling spacing: a 7x7 window samples every 2nd pixel."""
    h = w = 27   # padded to 28; choose a map where spacing 2 stays on pixel centres
    attn = randomise(build(), regression=False).eval()
    with torch.no_grad():
        attn.sampling_scales.bias.fill_(1.0)
    x = torch.randn(1, h * w, 16)
    hp = wp = 28
    with torch.no_grad():
        _, grid, _ = attn(x, (h, w), return_windows=True)
    # Window (0, 0), head 0: x positions in pixels.
    px = (grid[0, 0, 0, :7, 0] + 1) / 2 * (wp - 1)
    centre = 3.0
    assert torch.allclose(px, centre + 2 * (torch.arange(7.) - 3), atol=1e-4)
    py = (grid[0, 1, :7, 0, 1] + 1) / 2 * (hp - 1)
    assert torch.allclose(py, centre + 2 * (torch.arange(7.) - 3), atol=1e-4)


@pytest.mark.parametrize('pad_mode,swap', [('bottom_right', False), ('symmetric', True)])
@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (6, 6), (8, 30), (7, 7)])
def test_any_size_is_finite(pad_mode, swap, hw):
    """Sides below the window are padded, offset divisors clamped: no NaN / inf."""
    attn = randomise(build(pad_mode=pad_mode, swap_offset_norm=swap, use_cpe=True)).eval()
    x = torch.randn(2, hw[0] * hw[1], 16)
    out = attn(x, hw)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_regression_is_learnable():
    """The regression convs start at zero and still receive gradients through grid_sample."""
    attn = randomise(build(), regression=False).train()
    x = torch.randn(2, 10 * 13, 16, requires_grad=True)
    attn(x, (10, 13)).square().sum().backward()
    for conv in (attn.sampling_offsets, attn.sampling_scales):
        assert conv.weight.grad.abs().sum() > 0
        assert conv.bias.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all()


def test_non_zero_regression_changes_output():
    attn = randomise(build(), regression=True).eval()
    x = torch.randn(1, 14 * 14, 16)
    with torch.no_grad():
        out = attn(x, (14, 14))
        ref = plain_window_attention(attn, x, (14, 14))
    assert (out - ref).abs().max() > 1e-2


def test_out_dims_and_default_scale_follow_the_input_width():
    """Reduction cells: 64 input channels, 16 output, 2 heads -> scale 32**-0.5 (official)."""
    attn = build(embed_dims=64, out_dims=16, num_heads=2)
    assert attn.scale == pytest.approx(32 ** -0.5)
    out = attn(torch.randn(1, 49, 64), (7, 7))
    assert out.shape == (1, 49, 16)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='pad_mode'):
        build(pad_mode='reflect')
    with pytest.raises(ValueError, match='divisible'):
        build(embed_dims=15, num_heads=2)
    with pytest.raises(ValueError, match='tokens'):
        build()(torch.randn(1, 50, 16), (7, 7))


def test_mixed_precision_keeps_float32_sampling_positions():
    """Under bf16 autocast the grid stays float32 and the output stays close to float32."""
    attn = randomise(build()).eval()
    x = torch.randn(1, 20 * 27, 16)
    with torch.no_grad():
        ref = attn(x, (20, 27))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out, grid, _ = attn(x, (20, 27), return_windows=True)
    assert grid.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()


@pytest.mark.parametrize('window_size,num_heads,hw', [(4, 3, (9, 14)), (12, 5, (12, 30)), (1, 1, (2, 3))])
def test_other_windows_and_head_counts(window_size, num_heads, hw):
    attn = randomise(build(embed_dims=8 * num_heads, num_heads=num_heads,
                           window_size=window_size), regression=False).eval()
    x = torch.randn(2, hw[0] * hw[1], 8 * num_heads, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = plain_window_attention(attn, x, hw)
        diff = (attn(x, hw) - ref).abs().max().item()
    # float32 rounding of the grid only (worst of 200 random inputs: 1.14e-5 of the max)
    assert diff < 2e-5 * ref.abs().max().item(), diff
    randomise(attn, seed=1)
    assert torch.isfinite(attn(x, hw)).all()
