"""Circular-shift consistency of a classifier or segmentor (Ding et al., 2023).

    python tools/analysis_tools/shift_consistency.py CONFIG CKPT [--protocols paper aps]

Runs the config's test set once per protocol and prints, next to the config's own test
metrics, the consistency in %:

* classification: top-1 agreement between two random circular shifts of every image,
  drawn from ``0..14`` px per axis (``paper``) or ``-32..32`` px (``aps``);
* segmentation: the fraction of pixels whose predicted class is unchanged after shifting,
  segmenting and shifting back (random shift per image from the protocol's range).

See :mod:`windowlab.evaluation.shift_consistency` for the metric itself and
``ShiftConsistencyHook`` to add it to any ``tools/test.py`` run.
"""
import argparse

from mmengine.config import DictAction
from mmengine.model import is_model_wrapper

import windowlab  # noqa: F401  (registers windowlab models and projects)
from windowlab import launch
from windowlab.converters import load_checkpoint_file, load_state_dict_strict, unwrap_state_dict
from windowlab.evaluation.shift_consistency import PROTOCOLS  # also registers the hook


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file (windowlab layout)')
    parser.add_argument('--protocols', nargs='+', default=['paper', 'aps'],
                        choices=sorted(PROTOCOLS), help='shift ranges to evaluate')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random shifts')
    parser.add_argument('--work-dir', help='where the runner writes its logs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. test_dataloader.batch_size=8')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = launch.load_config(args.config, args.cfg_options)
    launch.set_work_dir(cfg, args.config, args.work_dir)
    launch.check_dataset_paths(cfg, ['test_dataloader'])
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ShiftConsistencyHook']
    cfg.custom_hooks = hooks + [
        dict(type='ShiftConsistencyHook', shift_range=PROTOCOLS[protocol], seed=args.seed,
             prefix=f'shift_{protocol}') for protocol in args.protocols]
    cfg.load_from = None  # loaded strictly below
    runner = launch.build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_state_dict_strict(model, unwrap_state_dict(load_checkpoint_file(args.checkpoint)),
                           source=f'checkpoint {args.checkpoint!r}')
    metrics = runner.test()
    print(f'circular-shift consistency of {args.config} ({args.checkpoint}):')
    for key, value in sorted(metrics.items()):
        print(f'  {key}: {value:.2f}' if isinstance(value, float) else f'  {key}: {value}')
    return metrics


if __name__ == '__main__':
    main()
