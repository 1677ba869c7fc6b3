"""Throughput and peak memory of a config's model: forward (inference) and forward+backward
(training step without the optimizer), with warm-up and repeats.

    python tools/analysis_tools/benchmark.py CONFIG [--shape H W] [--batch 2]
        [--module backbone] [--device cpu|cuda] [--warmup 3] [--repeats 10]
        [--cfg-options k=v ...] [--label NAME]

Each mode runs in a fresh process, so the peak memory of its first step
(:func:`windowlab.analysis.peak_memory_bytes`: ``torch.cuda.max_memory_allocated`` on GPU, the
growth of the process's peak RSS on CPU) belongs to that mode alone; throughput is the median over the repeats after warm-up. The last line
is a Markdown table row: ``| label | shape | batch | fwd img/s | fwd+bwd img/s | fwd peak MiB |
fwd+bwd peak MiB |``.
"""
import argparse
import multiprocessing as mp

import torch


def _measure(args, mode, queue):
    import windowlab  # noqa: F401
    from windowlab import launch
    from windowlab.analysis import TensorMode, loss_of, median_seconds, peak_memory_bytes

    torch.set_num_threads(args.threads) if args.threads else None
    cfg = launch.load_config(args.config, args.cfg_options)
    model = launch.build_model(cfg).to(args.device)
    target = model.get_submodule(args.module).to(args.device) if args.module else None
    net = TensorMode(model, cfg.default_scope, tuple(args.shape), target)
    x = torch.randn(args.batch, 3, *args.shape, device=args.device)
    train = mode == 'fwd+bwd'
    net.train(train)

    def step():
        if train:
            loss_of(net(x)).backward()
        else:
            with torch.no_grad():
                net(x)

    peak = peak_memory_bytes(step, args.device)
    median = median_seconds({mode: step}, args.repeats, args.warmup, args.device)[mode]
    queue.put(dict(throughput=args.batch / median, median_s=median, peak_mib=peak / 2**20))


def run_mode(args, mode):
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(args, mode, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f'benchmark of {mode} failed (exit code {proc.exitcode})')
    return queue.get()


def main():
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--module', help='benchmark only this submodule, e.g. backbone')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--label', help='row label (default: the config name)')
    parser.add_argument('--modes', nargs='+', default=['fwd', 'fwd+bwd'], choices=['fwd', 'fwd+bwd'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    results = {mode: run_mode(args, mode) for mode in args.modes}
    label = args.label or args.config.rsplit('/', 1)[-1].removesuffix('.py')
    for mode, r in results.items():
        print(f'{mode:8s} {r["throughput"]:8.2f} img/s  (median {r["median_s"] * 1e3:.1f} ms/batch)  '
              f'peak {r["peak_mib"]:.1f} MiB  [{args.device}]')
    cell = lambda mode, key, fmt: format(results[mode][key], fmt) if mode in results else '-'  # noqa: E731
    print(f'| {label} | {args.shape[0]}x{args.shape[1]} | {args.batch} | '
          f'{cell("fwd", "throughput", ".2f")} | {cell("fwd+bwd", "throughput", ".2f")} | '
          f'{cell("fwd", "peak_mib", ".0f")} | {cell("fwd+bwd", "peak_mib", ".0f")} |')


if __name__ == '__main__':
    main()
