"""Paint the ground truth of a config's dataset as the model sees it (after the pipeline):
boxes and masks (detection), label maps (segmentation), class names (classification).

    python tools/analysis_tools/browse_dataset.py CONFIG [--phase train] [--output-dir DIR]
                                                  [--max-images N] [--show [--show-interval S]]

Images smaller than ``--min-side`` pixels (short side) are enlarged before painting, so that
the labels of toy datasets stay readable.
"""
import argparse
import os.path as osp

import cv2
import numpy as np
from mmengine.config import DictAction
from mmengine.registry import VISUALIZERS

from windowlab import launch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a dataset through its pipeline')
    parser.add_argument('config')
    parser.add_argument('--phase', choices=['train', 'val', 'test'], default='train',
                        help='whose dataloader: train (with its augmentation), val or test')
    parser.add_argument('--output-dir', help='save the painted images here')
    parser.add_argument('--max-images', type=int, default=None, help='stop after N images')
    parser.add_argument('--show', action='store_true', help='show each image in a window')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='--show: seconds each image stays on screen')
    parser.add_argument('--min-side', type=int, default=224,
                        help='enlarge images whose short side is smaller than this')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if not (args.output_dir or args.show):
        parser.error('nothing to do: give --output-dir DIR and/or --show')
    return args


def network_image(inputs, min_side):
    """``(C, H, W)`` packed input (BGR) -> ``(H, W, 3)`` RGB uint8 and its enlargement factor."""
    img = np.ascontiguousarray(inputs.permute(1, 2, 0).numpy()[..., ::-1]).astype(np.uint8)
    scale = max(1, int(np.ceil(min_side / min(img.shape[:2]))))
    return img, scale


def paint(visualizer, scope, name, img, sample, scale, show, wait_time, out_file):
    """Ground truth of one packed sample, in the library's own visualizer."""
    if scope == 'mmpretrain':
        visualizer.visualize_cls(img, sample, draw_pred=False, rescale_factor=scale, show=show,
                                 wait_time=wait_time, out_file=out_file, name=name)
        return
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    visualizer.add_datasample(name, img, drawable_ground_truth(sample, scale), draw_pred=False,
                              show=show, wait_time=wait_time, out_file=out_file)


def drawable_ground_truth(sample, scale):
    """The sample's boxes (as a tensor), masks (as a bool array) or label map, ``scale`` times
    larger, as the detection and segmentation visualizers draw them."""
    from mmengine.structures import PixelData

    sample = sample.clone()
    if 'gt_instances' in sample:
        gt = sample.gt_instances
        if 'bboxes' in gt:
            gt.bboxes = getattr(gt.bboxes, 'tensor', gt.bboxes) * scale
        if 'masks' in gt:
            gt.masks = gt.masks.rescale(scale).to_ndarray().astype(bool)
    if 'gt_sem_seg' in sample:
        seg = sample.gt_sem_seg.data.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
        sample.gt_sem_seg = PixelData(data=seg)
    return sample


def main(argv=None):
    args = parse_args(argv)
    cfg = launch.load_config(args.config, args.cfg_options)
    scope = cfg.default_scope
    dataset = launch.build_dataset(cfg, args.phase)
    cfg.visualizer.pop('vis_backends', None)  # images go to --output-dir, nothing else
    cfg.visualizer['name'] = f'browse_dataset_{scope}'  # one instance per visualizer class
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    count = len(dataset) if args.max_images is None else min(args.max_images, len(dataset))
    for i in range(count):
        item = dataset[i]
        sample = item['data_samples']
        name = osp.basename(sample.get('img_path') or f'{i:06d}.png')
        img, scale = network_image(item['inputs'], args.min_side)
        out_file = args.output_dir and osp.join(args.output_dir, osp.splitext(name)[0] + '.png')
        paint(visualizer, scope, name, img, sample, scale, args.show, args.show_interval, out_file)
    if args.output_dir:
        print(f'{count} images painted into {args.output_dir}')


if __name__ == '__main__':
    main()
