"""Train a windowlab model: classification (mmpretrain), detection (mmdet) or segmentation
(mmseg), chosen by the config's ``default_scope``.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT] | --overwrite] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
                                 [--trust-checkpoint]

Before anything is built it checks that the work_dir is writable, not used by another run
(a lock) and, without --resume/--overwrite, holds no checkpoints of an earlier run; that the
checkpoint to resume is readable; and that the disk has room for the next checkpoint. A
non-finite loss stops the run (exit code 1), Ctrl-C saves the current iteration and exits
with 130; both print how to continue.
"""
import argparse
import contextlib
import os
import pickle
import sys

from mmengine.config import DictAction

import windowlab  # noqa: F401  (registers windowlab models, applies compat fixes)
from windowlab import launch
from windowlab.compat import DiskFullError
from windowlab.converters.checkpoint import add_trust_argument, checkpoint_read_error
from windowlab.engine import InterruptCheckpointHook, NonFiniteLossError, TrainingInterrupted


def parse_args():
    parser = argparse.ArgumentParser(description='Train a windowlab model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (GPUs x batch) / auto_scale_lr.base_batch_size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT; without CKPT, from the latest checkpoint '
                        'in the work_dir')
    parser.add_argument('--overwrite', action='store_true',
                        help='start a new run in a work_dir that holds checkpoints of an earlier '
                        'run (they get overwritten)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_trust_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = launch.load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    launch.set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        launch.enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise launch.ConfigError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume and args.overwrite:
        raise launch.ConfigError('--resume continues the run in the work_dir, --overwrite starts a '
                                 'new one there: give one of them')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.launcher != 'none':
        launch.use_gloo_without_cuda(cfg)
    launch.check_dataset_paths(cfg, ['train_dataloader', 'val_dataloader'])
    try:
        launch.check_work_dir_writable(cfg.work_dir)
        lock = launch.WorkDirLock(cfg.work_dir)
        with lock if launch.is_main_process() else contextlib.nullcontext():
            launch.check_new_run_keeps_old_checkpoints(cfg.work_dir, cfg.get('resume'),
                                                       args.overwrite)
            resume_from = launch.prepare_resume(cfg)
            runner = launch.build_runner(cfg)
            optimizer = cfg.optim_wrapper.get('optimizer', {}).get('type')
            launch.check_free_space(cfg.work_dir, launch.checkpoint_size_estimate(
                runner.model, optimizer, resume_from))
            runner.register_hook(InterruptCheckpointHook())
            runner.train()
    except pickle.UnpicklingError as e:  # load_from / resume refused by torch's safe loader
        raise checkpoint_read_error(cfg.get('load_from') or 'the checkpoint', e) from e
    except TrainingInterrupted as e:
        _stop(f'interrupted: saved {e.checkpoint}. Continue exactly where it stopped with\n'
              f'  python tools/train.py {args.config} {_work_dir_arg(args)}--resume', 130)
    except (launch.RunError, NonFiniteLossError, DiskFullError) as e:
        _stop(str(e), 1)
    launch.close_distributed()


def _work_dir_arg(args):
    return f'--work-dir {args.work_dir} ' if args.work_dir else ''


def _stop(message, code):
    print(f'\nwindowlab: {message}', file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == '__main__':
    main()
