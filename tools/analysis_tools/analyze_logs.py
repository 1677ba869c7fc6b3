"""Training curves and timing from mmengine's scalar logs (``<work_dir>/<run>/vis_data/*.json``).

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...] [--keys loss mIoU]
                                                [--legend A B] [--title T] [--out curves.png]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG [LOG ...] [--skip-first N]

LOG is a work_dir (every run in it, oldest first, so that a resumed run continues the curve),
one run's folder, or a ``vis_data/*.json`` file. Without ``--keys`` the curves are the training
loss and the task's metric, chosen by the run's ``default_scope`` (classification: accuracy/top1,
detection: coco/bbox_mAP, segmentation: mIoU). One panel per key, one line per LOG.
"""
import argparse
import glob
import json
import os.path as osp
import statistics

TASK_METRIC = {'mmpretrain': 'accuracy/top1', 'mmdet': 'coco/bbox_mAP', 'mmseg': 'mIoU'}


def scalar_files(log):
    """The json scalar files of ``log`` (a file, a run folder or a work_dir), oldest first."""
    if osp.isfile(log):
        return [log]
    for pattern in ('vis_data/scalars.json', '*/vis_data/scalars.json'):
        files = sorted(glob.glob(osp.join(log, pattern)))
        if files:
            return files
    raise FileNotFoundError(f'{log!r}: no vis_data/scalars.json in it or in its run folders '
                            '(mmengine writes <work_dir>/<timestamp>/vis_data/scalars.json)')


class Run:
    """The scalars of one LOG: ``train[key]`` and ``val[key]`` as ``{step: value}``; ``scope``
    is the config's ``default_scope`` (from ``vis_data/config.py``), ``None`` if unknown."""

    def __init__(self, log):
        self.name = log
        self.train, self.val, self.scope = {}, {}, None
        for path in scalar_files(log):
            self._read(path)
            config = osp.join(osp.dirname(path), 'config.py')
            if osp.isfile(config):
                from mmengine.config import Config
                config = Config.fromfile(config, import_custom_modules=False)
                self.scope = config.get('default_scope')

    def _read(self, path):
        last_train_step = None
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                record = json.loads(line)
                step = record.pop('step')
                # training records carry the learning rate; validation records the metrics.
                # A validation record's own step is the epoch (mmengine's default even for
                # iteration-based runs): it is placed at the iteration logged before it.
                if 'lr' in record or 'base_lr' in record:
                    table, last_train_step = self.train, step
                else:
                    table, step = self.val, step if last_train_step is None else last_train_step
                for key, value in record.items():
                    if isinstance(value, (int, float)):
                        table.setdefault(key, {})[step] = value  # a resumed run overwrites

    def series(self, key):
        """``(iterations, values)`` of ``key``; training keys win over validation keys."""
        for table in (self.train, self.val):
            if key in table:
                steps = sorted(table[key])
                return steps, [table[key][s] for s in steps]
        known = sorted((set(self.train) | set(self.val)) - {'iter', 'epoch'})
        raise ValueError(f'{self.name}: no {key!r} in the log; logged keys: {", ".join(known)}')


def default_keys(runs):
    scope = next((r.scope for r in runs if r.scope), None)
    keys = ['loss']
    if scope in TASK_METRIC and any(TASK_METRIC[scope] in r.val for r in runs):
        keys.append(TASK_METRIC[scope])
    return keys


def plot_curve(runs, keys, legend=None, title=None):
    """One panel per key, one line per run; returns the matplotlib figure."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    legend = legend or [r.name for r in runs]
    if len(legend) != len(runs):
        raise ValueError(f'--legend has {len(legend)} names for {len(runs)} logs')
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3.2 * len(keys)), squeeze=False,
                             sharex=True)
    for ax, key in zip(axes[:, 0], keys):
        for run, label in zip(runs, legend):
            steps, values = run.series(key)
            ax.plot(steps, values, marker='o' if len(steps) <= 50 else None, markersize=4,
                    label=label)
        ax.set_ylabel(key, fontsize=12)
        ax.tick_params(labelsize=11)
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=11)
    axes[-1, 0].set_xlabel('iteration', fontsize=12)
    if title:
        fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    return fig


def train_time(run, skip_first=1):
    """Seconds per iteration of the training records (``time``), the first ``skip_first``
    logged iterations left out (start-up); dict with mean, median, slowest, fastest."""
    steps, times = run.series('time')
    steps, times = steps[skip_first:], times[skip_first:]
    if not times:
        raise ValueError(f'{run.name}: no timed iterations after skipping {skip_first}')
    slowest = max(range(len(times)), key=times.__getitem__)
    fastest = min(range(len(times)), key=times.__getitem__)
    return dict(iters=len(times), mean=statistics.fmean(times), median=statistics.median(times),
                slowest=(steps[slowest], times[slowest]), fastest=(steps[fastest], times[fastest]))


def main(argv=None):
    parser = argparse.ArgumentParser(description='Analyse mmengine training logs')
    commands = parser.add_subparsers(dest='command', required=True)
    plot = commands.add_parser('plot_curve', help='plot logged scalars against the iteration')
    plot.add_argument('logs', nargs='+', help='work_dir, run folder or vis_data/*.json')
    plot.add_argument('--keys', nargs='+',
                      help='scalars to plot (default: loss and the task metric)')
    plot.add_argument('--legend', nargs='+', help='one name per log')
    plot.add_argument('--title')
    plot.add_argument('--out', help='save the figure (PNG, PDF, ...) instead of showing it')
    timing = commands.add_parser('cal_train_time', help='time per training iteration')
    timing.add_argument('logs', nargs='+', help='work_dir, run folder or vis_data/*.json')
    timing.add_argument('--skip-first', type=int, default=1,
                        help='leave out the first N logged iterations (start-up)')
    args = parser.parse_args(argv)
    try:
        run_command(args)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}') from None


def run_command(args):
    runs = [Run(log) for log in args.logs]
    if args.command == 'plot_curve':
        fig = plot_curve(runs, args.keys or default_keys(runs), args.legend, args.title)
        if args.out:
            fig.savefig(args.out, dpi=100)
            print(f'saved {args.out}')
        else:
            import matplotlib.pyplot as plt
            plt.show()
    else:
        for run in runs:
            t = train_time(run, args.skip_first)
            print(f'{run.name}\n'
                  f'  timed iterations: {t["iters"]}\n'
                  f'  mean: {t["mean"]:.4f} s/iter, median: {t["median"]:.4f} s/iter\n'
                  f'  slowest: iteration {t["slowest"][0]} ({t["slowest"][1]:.4f} s), '
                  f'fastest: iteration {t["fastest"][0]} ({t["fastest"][1]:.4f} s)')


if __name__ == '__main__':
    main()
