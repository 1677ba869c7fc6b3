"""Device check: every windowlab family on one device, in fp32 and autocast, against float64.

    python tools/analysis_tools/device_check.py [--device cuda] [--size full|tiny] [--batch 2]
        [--repeats N]

Needs only torch, mmengine and windowlab (no mmcv, mmdet, mmseg or mmpretrain). Families:
Swin-T, Swin-VSA-T, ViTAEv2-VSA-S, BiFormer-S (classification form, and dense form with
``auto_pad``), PolyViT-S, PolyTwins-S, PolySwin-T and the VWFormer head (``VWDecoder``, the
computation of ``VWHead``, on the four maps of Swin-T). ``--size full`` builds the released
archs at 224x224 (the dense BiFormer at 480x480, where ``auto_pad`` pads stages 2 and 3; the VW
head on the maps of a 512x512 image); ``--size tiny`` builds small archs on small inputs (every
BRA stage of the dense BiFormer pads), for CI on a CPU.

Every model is built with its own init (seed 0), then its norm weights and biases are spread
(:func:`spread_norm_affines`), and run in eval mode (no dropout or drop-path, norms
on running statistics). At each precision -- ``fp32`` (TF32 off) and autocast ``bf16`` and, on
CUDA, ``fp16`` -- one row reports:

* ``vs fp64``: the error of the outputs against a float64 CPU run of the same weights and inputs
  (reference attention path);
* ``fused vs ref``: the fused (SDPA) attention path against the reference path, same precision;
* ``fast vs gather`` (BiFormer): the fast BRA against the released gather;
* ``grads``: every parameter gradient of ``sum_i mean(out_i ** 2)`` is finite;
* median times (ms) of a forward (no grad) and a forward+backward, fused vs reference path and,
  for BiFormer, fast vs gather BRA; the variants alternate in every round, after warm-up.

Errors are normwise relative, ``max|y - y_ref| / max|y_ref|``, the largest over the outputs
(element-wise relative errors are meaningless where outputs cross zero). A row passes when its
gradients are finite and each error is within the tolerance of its precision (:data:`TOLERANCE`):

* fp32: 1e-4. Measured on CPU (``--size tiny``): at most 8e-7, so a kernel bug that moves
  outputs by 1e-4 fails while reduction-order differences of deeper models and GPUs pass.
* bf16: 5e-2, about 3 times the largest error measured on CPU (1.5e-2, tiny), the rounding of
  bf16 activations (3 significant digits) through the blocks; a wrong mask, scale or bias
  (errors of order 1) fails.
* fp16: 1e-2, set from fp16's 8 times finer rounding than bf16 (not measured yet: no GPU).

Discrete choices (polyphase anchors, BRA regions) may differ between precisions where they
nearly tie, which changes the output wholesale without any numerical fault. The choices of the
fused run are therefore replayed in every comparison run (:func:`decisions`); a float64 run
that chose otherwise is repeated with them, marked ``*`` in the table.

Exit status 1 if any row fails.
"""
import argparse
import contextlib
import copy
import logging
import sys
from collections import namedtuple

import torch
from mmengine.logging import MMLogger
from torch import nn

from windowlab.analysis import median_seconds
from windowlab.models.backbones.swin import WLSwinTransformer
from windowlab.models.layers import polyphase
from windowlab.models.layers.attention import attention_impl
from windowlab.projects.biformer import BiFormer
from windowlab.projects.biformer.bra import BiLevelRoutingAttention
from windowlab.projects.shift_equivariant import PolySwin, PolyTwins, PolyViT
from windowlab.projects.vsa import ViTAEv2VSA
from windowlab.projects.vwformer import VWDecoder

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
TOLERANCE = {'fp32': 1e-4, 'bf16': 5e-2, 'fp16': 1e-2}

SWIN_TINY = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4))
VSA_ATTN = dict(type='VSAWindowAttention', use_cpe=True)
BIFORMER_TINY = dict(embed_dims=(16, 32, 32, 32), depths=(1, 1, 2, 1), num_heads=(1, 1, 1, 1))
BIFORMER_DENSE = dict(auto_pad=True, out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='LN2d'))
SWIN_T_CHANNELS = (96, 192, 384, 768)

# cls: the model class; full / tiny: (constructor kwargs, input H x W); head: whether the input
# is the four maps of an image (the VW head) rather than the image.
Family = namedtuple('Family', 'cls full tiny head', defaults=(False,))
FAMILIES = {
    'Swin-T': Family(WLSwinTransformer, (dict(arch='tiny'), (224, 224)),
                     (dict(arch=SWIN_TINY, window_size=4), (64, 64))),
    'Swin-VSA-T': Family(
        WLSwinTransformer, (dict(arch='tiny', shift_windows=False, attn_cfg=VSA_ATTN), (224, 224)),
        (dict(arch=SWIN_TINY, window_size=4, shift_windows=False, attn_cfg=VSA_ATTN), (64, 64))),
    'ViTAEv2-VSA-S': Family(ViTAEv2VSA, (dict(arch='s'), (224, 224)), (dict(
        arch=dict(embed_dims=(8, 8, 16, 16), token_dims=(8, 16, 16, 32), depths=(1, 1, 2, 1),
                  rc_heads=(1, 2, 2, 2), nc_heads=(2, 2, 2, 4), rc_groups=(1, 2, 2, 4),
                  nc_groups=(1, 2, 2, 4), wide_pcm=False), window_size=2), (64, 64))),
    'BiFormer-S cls': Family(BiFormer, (dict(arch='small'), (224, 224)),
                             (dict(arch=BIFORMER_TINY, n_win=2, topks=(1, 2, 2, -1)), (64, 64))),
    'BiFormer-S dense': Family(
        BiFormer, (dict(arch='small', n_win=8, **BIFORMER_DENSE), (480, 480)),
        (dict(arch=BIFORMER_TINY, n_win=3, topks=(1, 2, 2, -1), **BIFORMER_DENSE), (56, 72))),
    'PolyViT-S': Family(PolyViT, (dict(arch='small', patch_size=16), (224, 224)),
                        (dict(arch=dict(embed_dims=16, depth=3, num_heads=2), patch_size=8),
                         (32, 32))),
    'PolyTwins-S': Family(PolyTwins, (dict(arch='small'), (224, 224)), (dict(arch=dict(
        embed_dims=[8, 16, 16, 16], num_heads=[1, 1, 1, 1], depths=[2, 2, 2, 2],
        window_sizes=[2, 2, 2, 2], sr_ratios=[2, 2, 2, 1])), (64, 64))),
    'PolySwin-T': Family(PolySwin, (dict(arch='tiny'), (224, 224)),
                         (dict(arch=SWIN_TINY, window_size=2), (64, 64))),
    'VWHead (Swin-T maps)': Family(
        VWDecoder, (dict(in_channels=SWIN_T_CHANNELS, channels=512, num_classes=150), (512, 512)),
        (dict(in_channels=(16, 32, 48, 64), channels=64, num_classes=5), (128, 192)), head=True),
}
# size -> (warm-up rounds, timed rounds) of the timings
ROUNDS = {'tiny': (1, 3), 'full': (3, 10)}


def spread_norm_affines(model):
    """Norm weights uniform in [0.5, 1.5], biases normal (std 0.1), as after training.

    At init every norm has weight 1 and bias 0 (VWA's output norms even weight 0): tokens right
    after a LayerNorm then tie exactly in norm, which makes PolySwin's anchor choice a tie-break
    that low precision may decide differently, and VWA contributes nothing."""
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, norm_types) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)


def build(family, size, batch):
    """``(model, inputs)``: the family's model (seed 0, own init, eval mode, CPU fp32) and its
    positional inputs: ``([B, 3, H, W],)`` or, for the head, ``([4 maps [B, C_i, H/s, W/s]],)``
    for strides ``s = 4, 8, 16, 32``."""
    kwargs, (h, w) = getattr(family, size)
    torch.manual_seed(0)
    model = family.cls(**kwargs)
    model.init_weights()
    spread_norm_affines(model)
    if family.head:
        maps = [torch.randn(batch, c, -(-h // 2**(i + 2)), -(-w // 2**(i + 2)))
                for i, c in enumerate(model.in_channels)]
        return model.eval(), (maps,)
    return model.eval(), (torch.randn(batch, 3, h, w),)


def apply(fn, obj):
    """``fn`` on every tensor of a nest of lists/tuples."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    return type(obj)(apply(fn, o) for o in obj)


def flat(obj):
    """The tensors of a nest of lists/tuples, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    return [t for o in obj for t in flat(o)]


def rel_error(outputs, references):
    """Normwise relative error ``max|y - r| / max|r|``, the largest over the output tensors."""
    return max(((y.double().cpu() - r.double().cpu()).abs().max() / r.abs().max()).item()
                for y, r in zip(flat(outputs), flat(references)))


def squared_loss(outputs):
    """``sum_i mean(out_i ** 2)`` in float32."""
    return sum(t.float().square().mean() for t in flat(outputs))


@contextlib.contextmanager
def bra_impl(model, impl):
    """Run every :class:`BiLevelRoutingAttention` of ``model`` with ``impl`` (same weights)."""
    layers = [m for m in model.modules() if isinstance(m, BiLevelRoutingAttention)]
    before = [m.impl for m in layers]
    for m in layers:
        m.impl = impl
    try:
        yield
    finally:
        for m, old in zip(layers, before):
            m.impl = old


# The discrete choices of a forward: polyphase anchors (PolyViT, PolyTwins, PolySwin) and BRA
# routing (BiFormer), as (owner, attribute) of the function that makes them.
DECISIONS = ((polyphase, 'select_anchors'), (BiLevelRoutingAttention, 'route'))


@contextlib.contextmanager
def decisions(replay=None):
    """Record the discrete choices made inside (yields the list that receives them, in call
    order) or, given such a list, make the same choices again instead of choosing."""
    record, replayed = [], iter(replay) if replay is not None else None
    originals = [getattr(owner, name) for owner, name in DECISIONS]

    def wrap(choose):
        def recorded(*args, **kwargs):
            if replayed is None:
                out = choose(*args, **kwargs)
            else:
                device = next(a.device for a in args if isinstance(a, torch.Tensor))
                out = next(replayed).to(device)
            record.append(out.detach().cpu())
            return out
        return recorded

    for (owner, name), choose in zip(DECISIONS, originals):
        setattr(owner, name, wrap(choose))
    try:
        yield record
    finally:
        for (owner, name), choose in zip(DECISIONS, originals):
            setattr(owner, name, choose)


def same_decisions(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def autocast(device, precision):
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def check(model, inputs, reference, device, precision, rounds):
    """One table row (dict) of ``model`` on ``device`` at ``precision``. ``reference(choices)``
    returns the float64 CPU outputs of the same weights and inputs, made with those discrete
    choices, and whether they differ from float64's own."""
    variants = {'fused': lambda: attention_impl('fused'),
                'ref': lambda: attention_impl('reference')}
    if any(isinstance(m, BiLevelRoutingAttention) for m in model.modules()):
        variants['gather'] = lambda: bra_impl(model, 'gather')

    def forward(variant):
        with variants[variant](), autocast(device, precision):
            return model(*inputs)

    model.zero_grad(set_to_none=True)
    with decisions() as choices:
        out = forward('fused')
    squared_loss(out).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    row = dict(grads=bool(grads) and all(g is not None and torch.isfinite(g).all()
                                         for g in grads))
    # Every comparison makes the fused run's discrete choices: a near-tie that rounding
    # decides otherwise is not an error of the kernels.
    expected, row['replayed'] = reference(choices)
    with torch.no_grad():  # (without autograd: where the fused kernels always run)
        row['vs fp64'] = rel_error(out, expected)
        with decisions(replay=choices):
            fused = forward('fused')
        for key, variant in (('fused vs ref', 'ref'), ('fast vs gather', 'gather')):
            if variant in variants:
                with decisions(replay=choices):
                    row[key] = rel_error(fused, forward(variant))

    def fwd(variant):
        with torch.no_grad():
            forward(variant)

    def fwd_bwd(variant):
        model.zero_grad(set_to_none=True)
        squared_loss(forward(variant)).backward()

    steps = {}
    for variant in variants:
        steps[('fwd', variant)] = lambda v=variant: fwd(v)
        steps[('fwd+bwd', variant)] = lambda v=variant: fwd_bwd(v)
    warmup, repeats = rounds
    row['ms'] = {k: 1e3 * t for k, t in median_seconds(steps, repeats, warmup, device).items()}
    model.zero_grad(set_to_none=True)
    return row


def verdict(row, precision):
    """``'pass'`` or ``'FAIL: <reasons>'``."""
    tol = TOLERANCE[precision]
    reasons = [] if row['grads'] else ['non-finite grads']
    reasons += [f'{key} > {tol:g}' for key in ('vs fp64', 'fused vs ref', 'fast vs gather')
                if row.get(key, 0.0) > tol]
    return 'FAIL: ' + ', '.join(reasons) if reasons else 'pass'


COLUMNS = ('model', 'precision', 'vs fp64', 'fused vs ref', 'fast vs gather', 'grads',
           'fwd ms fused / ref', 'fwd+bwd ms fused / ref', 'fwd+bwd ms fast / gather', 'verdict')


def table_row(name, precision, row):
    """The Markdown cells of one row."""
    ms = row['ms']

    def pair(mode, a, b):
        return f'{ms[(mode, a)]:.1f} / {ms[(mode, b)]:.1f}' if (mode, b) in ms else '-'

    cells = [name, precision, f'{row["vs fp64"]:.1e}' + ('*' if row['replayed'] else ''),
             f'{row["fused vs ref"]:.1e}',
             f'{row["fast vs gather"]:.1e}' if 'fast vs gather' in row else '-',
             'finite' if row['grads'] else 'NON-FINITE', pair('fwd', 'fused', 'ref'),
             pair('fwd+bwd', 'fused', 'ref'), pair('fwd+bwd', 'fused', 'gather'),
             verdict(row, precision)]
    return '| ' + ' | '.join(cells) + ' |'


def run_family(name, family, args):
    """The table rows of one family, every precision of ``args.device``."""
    model, inputs = build(family, args.size, args.batch)
    model64, inputs64 = copy.deepcopy(model).double(), apply(torch.Tensor.double, inputs)

    def run64(replay=None):
        with torch.no_grad(), attention_impl('reference'), decisions(replay) as choices:
            return model64(*inputs64), choices

    natural = run64()

    def reference(choices):
        """float64 outputs with ``choices``, and whether these differ from float64's own."""
        if same_decisions(choices, natural[1]):
            return natural[0], False
        return run64(choices)[0], True

    model.to(args.device)
    inputs = apply(lambda t: t.to(args.device), inputs)
    precisions = ['fp32', 'bf16'] + (['fp16'] if torch.device(args.device).type == 'cuda' else [])
    rounds = ROUNDS[args.size][0], args.repeats or ROUNDS[args.size][1]
    lines = []
    for precision in precisions:
        row = check(model, inputs, reference, args.device, precision, rounds)
        lines.append((table_row(name, precision, row), verdict(row, precision) == 'pass'))
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda', help='cuda, cuda:1, cpu, ...')
    parser.add_argument('--size', default='full', choices=sorted(ROUNDS))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int,
                        help='timed rounds (default: 3 for tiny, 10 for full)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init report
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'device check: {name}, torch {torch.__version__}, size {args.size}, batch '
          f'{args.batch}, {torch.get_num_threads()} CPU threads; tolerances '
          + ', '.join(f'{p} {t:g}' for p, t in TOLERANCE.items()) + '\n')
    print('| ' + ' | '.join(COLUMNS) + ' |')
    print('|' + '---|' * len(COLUMNS))
    passed, replayed = True, False
    for name, family in FAMILIES.items():
        for line, ok in run_family(name, family, args):
            print(line, flush=True)
            passed &= ok
            replayed |= '*' in line
    if replayed:
        print('\n\\* this precision chose other polyphase anchors or BRA regions than float64 '
              '(near-ties decided by rounding); the float64 run was repeated with its choices.')
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
