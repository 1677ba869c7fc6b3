"""The windowlab demo (``make demo``): train a small Swin Mask R-CNN on generated COCO-format
toy data on the CPU, evaluate it with the COCO metric, and paint its predictions.

1. ``data/toy-coco`` is generated (deterministic, seconds) unless present.
2. ``configs/swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py`` trains with ``tools/train.py``'s
   machinery into ``work_dirs/demo/`` (logs, checkpoints). An interrupted demo resumes from
   its last checkpoint; a finished one is only evaluated again.
3. The COCO box/mask mAP on toy-coco val is printed, and ``work_dirs/demo/predictions.png``
   shows predictions on validation images.
"""
import argparse
import glob
import os.path as osp
import time

import cv2
import numpy as np
import torch
from mmengine.runner import find_latest_checkpoint

import windowlab  # noqa: F401
from windowlab import launch
from windowlab.datasets.toy import make_toy_coco

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs/swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs/demo'))
    parser.add_argument('--data-root', default=osp.join(REPO, 'data'))
    parser.add_argument('--max-iters', type=int, default=None, help='override the schedule length')
    return parser.parse_args()


def paint_predictions(model, dataloader, out_file, num_images=6, score_thr=0.5):
    """Paint the predictions on the first validation images, 3 per row, into one PNG."""
    from mmdet.visualization import DetLocalVisualizer

    visualizer = DetLocalVisualizer()
    visualizer.dataset_meta = dataloader.dataset.metainfo
    tiles = []
    model.eval()
    for batch in dataloader:
        with torch.no_grad():
            samples = model.test_step(batch)
        for sample in samples:
            image = cv2.imread(sample.img_path)[..., ::-1]
            visualizer.add_datasample('pred', image, sample, draw_gt=False, pred_score_thr=score_thr)
            tiles.append(cv2.resize(visualizer.get_image(), (image.shape[1] * 2, image.shape[0] * 2)))
        if len(tiles) >= num_images:
            break
    tiles = tiles[:num_images - num_images % 3 or num_images]
    grid = np.concatenate([np.concatenate(tiles[i:i + 3], 1) for i in range(0, len(tiles), 3)], 0)
    cv2.imwrite(out_file, grid[..., ::-1])


def main():
    args = parse_args()
    start = time.time()
    data_root = osp.join(args.data_root, 'toy-coco')
    if not osp.isfile(osp.join(data_root, 'annotations/instances_val2017.json')):
        make_toy_coco(data_root)
    cfg = launch.load_config(CONFIG)
    cfg.work_dir = args.work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root + '/'
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = \
        osp.join(data_root, 'annotations/instances_val2017.json')
    max_iters = args.max_iters or cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters + 1  # evaluated once, below
    cfg.default_hooks.visualization.draw = False

    final = osp.join(args.work_dir, f'iter_{max_iters}.pth')
    latest = find_latest_checkpoint(args.work_dir) if osp.isdir(args.work_dir) else None
    if osp.isfile(final):
        print(f'[demo] {final} exists: evaluating it (delete {args.work_dir} to train again)')
        cfg.load_from = final
        runner = launch.build_runner(cfg)
    else:
        if latest:
            print(f'[demo] resuming from {latest}')
            cfg.resume, cfg.load_from = True, latest
        runner = launch.build_runner(cfg)
        runner.train()
    metrics = runner.test()
    png = osp.join(args.work_dir, 'predictions.png')
    paint_predictions(runner.model, runner.test_dataloader, png)
    minutes = (time.time() - start) / 60
    print('\n[demo] Mask R-CNN + windowlab Swin on toy-coco val '
          f'({len(runner.test_dataloader.dataset)} images, 3 classes), {minutes:.1f} min:')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        print(f'[demo]   {key:18s} {metrics[key]:.3f}')
    print(f'[demo] predictions painted to {png}; logs and checkpoints in {args.work_dir}')
    for path in sorted(glob.glob(osp.join(args.work_dir, '*.pth'))):
        print(f'[demo]   checkpoint {osp.basename(path)}')


if __name__ == '__main__':
    main()
