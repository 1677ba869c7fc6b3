"""Benchmark the fast BRA against the released gather: throughput and memory.

For each case (a BRA layer at the shape of a BiFormer-T stage, or the whole BiFormer-T backbone)
and each ``impl``, in a fresh subprocess:

* ``fwd img/s``: inference (``torch.no_grad``), median of ``--repeat`` timed runs;
* ``fwd+bwd img/s``: forward and backward of ``sum(out**2)``, median;
* ``saved MiB``: memory autograd keeps between forward and backward (exact, distinct storages);
* ``peak MiB``: peak memory of one forward+backward above the level before it
  (:func:`windowlab.analysis.peak_memory_bytes`: CUDA allocator peak, or peak RSS on CPU).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python projects/biformer/benchmark_bra.py            # CPU
    PYTHONPATH=. python projects/biformer/benchmark_bra.py --device cuda --batch 64 --repeat 20
"""
import argparse
import json
import multiprocessing as mp
import sys

import torch

# BiFormer-T at 224x224, n_win 7: (map side, channels, heads, topk) of the BRA stages.
STAGES = {'stage1': (56, 64, 2, 1), 'stage2': (28, 128, 4, 4), 'stage3': (14, 256, 8, 16)}


def _build(case, impl, device):
    import windowlab.projects.biformer  # noqa: F401
    from windowlab.projects.biformer import BiFormer
    from windowlab.registry import LAYERS
    if case == 'biformer_t':
        return BiFormer('tiny', attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl)).to(device)
    side, dims, heads, topk = STAGES[case]
    return LAYERS.build(dict(type='BiLevelRoutingAttention', embed_dims=dims, num_heads=heads,
                             n_win=7, topk=topk, impl=impl)).to(device)


def _input(case, batch, device):
    if case == 'biformer_t':
        return torch.randn(batch, 3, 224, 224, device=device)
    side, dims = STAGES[case][:2]
    return torch.randn(batch, side, side, dims, device=device)


def _loss(out):
    return sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))


def _timed(fn, repeat, device):
    from windowlab.analysis import median_seconds
    return median_seconds({'step': fn}, repeat, warmup=0, device=device)['step']


def _measure(case, impl, batch, repeat, device, queue):
    from windowlab.analysis import peak_memory_bytes
    torch.manual_seed(0)
    model = _build(case, impl, device)
    x = _input(case, batch, device)

    def step():
        model.zero_grad(set_to_none=True)
        _loss(model(x.requires_grad_())).backward()

    # memory first, before any warm-up, so that the peak belongs to one step
    peak = peak_memory_bytes(step, device)
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x.requires_grad_())
    del out
    with torch.no_grad():
        model(x)
        fwd = _timed(lambda: model(x), repeat, device)
    step()
    fwd_bwd = _timed(step, repeat, device)
    queue.put(dict(case=case, impl=impl, fwd=batch / fwd, fwd_bwd=batch / fwd_bwd,
                   saved=sum(storages.values()) / 2**20, peak=peak / 2**20))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=list(STAGES) + ['biformer_t'],
                        choices=list(STAGES) + ['biformer_t'])
    parser.add_argument('--impls', nargs='+', default=['gather', 'fast'],
                        choices=['gather', 'fast'])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)

    ctx = mp.get_context('spawn')
    rows = []
    print(f'device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, '
          f'batch {args.batch}')
    print(f'{"case":<11} {"impl":<7} {"fwd img/s":>10} {"fwd+bwd img/s":>14} {"saved MiB":>10} '
          f'{"peak MiB":>9}')
    for case in args.cases:
        for impl in args.impls:
            queue = ctx.Queue()
            proc = ctx.Process(target=_measure,
                               args=(case, impl, args.batch, args.repeat, args.device, queue))
            proc.start()
            row = queue.get()
            proc.join()
            rows.append(row)
            print(f'{case:<11} {impl:<7} {row["fwd"]:>10.1f} {row["fwd_bwd"]:>14.1f} '
                  f'{row["saved"]:>10.1f} {row["peak"]:>9.1f}', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    sys.exit(main() and 0)
