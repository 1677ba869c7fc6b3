"""Evaluate a windowlab checkpoint on the config's test set (classification, detection or
segmentation, chosen by the config's ``default_scope``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--tta]
                                           [--show-dir DIR] [--show [--wait-time S]]
                                           [--cfg-options k=v ...] [--trust-checkpoint]

The checkpoint is loaded strictly: a file whose keys do not fit the model is refused with
the list of missing/unexpected keys (convert official releases with tools/model_converters/).
Relative position bias tables trained with another window are resized (bicubic, logged), as
the official codes do. A file that torch's safe weights-only loader refuses (e.g. one holding
an ``argparse.Namespace``) loads with ``--trust-checkpoint`` if you trust its source.
"""
import argparse
import os

from mmengine.config import DictAction
from mmengine.model import is_model_wrapper

import windowlab  # noqa: F401  (registers windowlab models, applies compat fixes)
from windowlab import launch
from windowlab.converters import load_checkpoint_file, load_state_dict_strict, unwrap_state_dict
from windowlab.converters.checkpoint import add_trust_argument


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a windowlab model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', help='detection/classification: a .pkl file to dump predictions to; '
                        'segmentation: a directory for the predicted label maps')
    parser.add_argument('--show-dir', help='directory where every painted prediction is saved')
    parser.add_argument('--show', action='store_true',
                        help='show each painted prediction in a window')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='--show: seconds each prediction stays on screen')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_pipeline views, merged by "
                        'its tta_model')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.batch_size=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_trust_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


VISUALIZATION_HOOK = {'mmdet': 'DetVisualizationHook', 'mmseg': 'SegVisualizationHook',
                      'mmpretrain': 'VisualizationHook'}


def add_outputs(cfg, args):
    """Wire ``--out``, ``--show-dir`` and ``--show`` the way each OpenMMLab library's test.py
    does; every test image is painted."""
    scope = cfg.default_scope
    if args.out:
        if scope == 'mmseg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        else:
            if not args.out.endswith(('.pkl', '.pickle')):
                raise launch.ConfigError('--out must be a .pkl file for classification/detection')
            dump = 'DumpDetResults' if scope == 'mmdet' else 'DumpResults'
            evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
            cfg.test_evaluator = [*evaluators, dict(type=dump, out_file_path=args.out)]
    if args.show_dir or args.show:
        if 'visualization' not in cfg.default_hooks:
            cfg.default_hooks['visualization'] = dict(type=VISUALIZATION_HOOK[scope])
        hook = cfg.default_hooks['visualization']
        hook.update(show=args.show, wait_time=args.wait_time, interval=1)
        if scope == 'mmdet':
            hook.update(draw=True, test_out_dir=args.show_dir)
        elif scope == 'mmseg':
            hook.update(draw=True)
            if args.show_dir:
                cfg.visualizer['save_dir'] = args.show_dir
        else:
            hook.update(enable=True, out_dir=args.show_dir)


def use_tta(cfg):
    """Wrap the model in ``cfg.tta_model`` and test on ``cfg.tta_pipeline`` (both come with
    the base configs: configs/_base_/default_runtime_*.py and configs/_base_/datasets/)."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise launch.ConfigError(
            f'--tta needs {" and ".join(missing)} in {cfg.filename}; inherit a '
            'configs/_base_/default_runtime_*.py (tta_model) and a configs/_base_/datasets/ '
            'file (tta_pipeline), or define them')
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    hook = cfg.default_hooks.get('visualization')
    if cfg.default_scope == 'mmpretrain' and hook and hook.get('enable'):
        from windowlab.engine import tta_visualization_hook  # noqa: F401  (registers it)
        hook['type'] = 'TTAVisualizationHook'  # paints one view per image
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # wrapper datasets (RepeatDataset, ClassBalancedDataset, ...)
        dataset = dataset['dataset']
    dataset['pipeline'] = cfg.tta_pipeline


def main():
    args = parse_args()
    cfg = launch.load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    launch.set_work_dir(cfg, args.config, args.work_dir)
    if args.launcher != 'none':
        launch.use_gloo_without_cuda(cfg)
    add_outputs(cfg, args)
    if args.tta:
        use_tta(cfg)
    cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='TestProgressHook')]
    launch.check_dataset_paths(cfg, ['test_dataloader'])
    cfg.load_from = None  # loaded strictly below instead of mmengine's lenient loader
    runner = launch.build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if args.tta:
        model = model.module  # the checkpoint holds the model that the TTA wrapper runs
    checkpoint = load_checkpoint_file(args.checkpoint)
    load_state_dict_strict(model, unwrap_state_dict(checkpoint), source=f'checkpoint {args.checkpoint!r}')
    dataset_meta = checkpoint.get('meta', {}).get('dataset_meta') if isinstance(checkpoint, dict) else None
    if dataset_meta:
        model.dataset_meta = dataset_meta
    metrics = runner.test()
    launch.close_distributed()
    print({k: round(float(v), 4) if isinstance(v, (int, float)) else v for k, v in metrics.items()})


if __name__ == '__main__':
    main()
