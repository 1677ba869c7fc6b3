"""Train a windowlab model: classification (mmpretrain), detection (mmdet) or segmentation
(mmseg), chosen by the config's ``default_scope``.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
                                 [--trust-checkpoint]
"""
import argparse
import os
import pickle

from mmengine.config import DictAction

import windowlab  # noqa: F401  (registers windowlab models, applies compat fixes)
from windowlab import launch
from windowlab.converters.checkpoint import add_trust_argument, checkpoint_read_error


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
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.launcher != 'none':
        launch.use_gloo_without_cuda(cfg)
    launch.check_dataset_paths(cfg, ['train_dataloader', 'val_dataloader'])
    runner = launch.build_runner(cfg)
    try:
        runner.train()
    except pickle.UnpicklingError as e:  # load_from / resume refused by torch's safe loader
        raise checkpoint_read_error(cfg.get('load_from') or 'the checkpoint', e) from e
    launch.close_distributed()


if __name__ == '__main__':
    main()
