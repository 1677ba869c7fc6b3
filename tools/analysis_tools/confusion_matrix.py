"""Confusion matrix of a model's test predictions (rows: ground truth, columns: prediction),
saved as a figure; the task follows the config's ``default_scope``.

    python tools/test.py CONFIG CKPT --out PRED          # PRED: results.pkl, or a folder (seg)
    python tools/analysis_tools/confusion_matrix.py CONFIG PRED --out cm.png [--counts]
                                      [--score-thr 0.3] [--tp-iou-thr 0.5]   # detection

* classification: one count per image (``gt_label``, top ``pred_score`` of the .pkl);
* detection: per image, the detections scoring at least ``--score-thr`` are matched, highest
  score first, one-to-one to the unmatched ground-truth box of highest IoU (at least
  ``--tp-iou-thr``, any class). A match counts at (its ground-truth class, its class); an
  unmatched detection at (background, its class); a missed box at (its class, background).
  Crowd boxes are left out. (mmdet's tool can count one object for several detections.)
* segmentation: one count per pixel, the predicted label maps (``--out`` folder of test.py)
  against the dataset's, ignored pixels left out.

Each row is shown in percent of its total (``--counts``: raw counts), with the total at the
row's end.
"""
import argparse
import os.path as osp
import pickle

import numpy as np
from mmengine.config import DictAction

from windowlab import launch


def classification_matrix(results, num_classes):
    """Image counts; the prediction is the top score, as mmpretrain's Accuracy takes it."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for r in results:
        pred = r['pred_score'].argmax() if 'pred_score' in r else r['pred_label'][0]
        matrix[int(r['gt_label'][0]), int(pred)] += 1
    return matrix


def box_iou(a, b):
    """IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def detection_matrix(results, dataset, num_classes, score_thr, tp_iou_thr):
    """``(C + 1, C + 1)`` counts; index ``C`` is background."""
    ground_truth = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        kept = [g for g in info['instances'] if not g.get('ignore_flag', 0)]
        ground_truth[info['img_path']] = (
            np.array([g['bbox'] for g in kept], np.float64).reshape(-1, 4),
            np.array([g['bbox_label'] for g in kept], np.int64))
    bg = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for r in results:
        if r['img_path'] not in ground_truth:
            raise ValueError(f"{r['img_path']} is not in the config's test dataset; the "
                             'predictions come from another dataset')
        gt_boxes, gt_labels = ground_truth[r['img_path']]
        pred = r['pred_instances']
        scores = np.asarray(pred['scores'], np.float64)
        keep = np.flatnonzero(scores >= score_thr)
        keep = keep[np.argsort(-scores[keep], kind='stable')]
        boxes = np.asarray(pred['bboxes'], np.float64).reshape(-1, 4)[keep]
        labels = np.asarray(pred['labels'], np.int64)[keep]
        ious = box_iou(boxes, gt_boxes) if len(gt_boxes) else np.zeros((len(boxes), 0))
        matched = np.zeros(len(gt_boxes), bool)
        for d, label in enumerate(labels):
            candidates = np.where(matched, -1.0, ious[d])
            j = int(np.argmax(candidates)) if len(candidates) else -1
            if j >= 0 and candidates[j] >= tp_iou_thr:
                matched[j] = True
                matrix[gt_labels[j], label] += 1
            else:
                matrix[bg, label] += 1
        for label in gt_labels[~matched]:
            matrix[label, bg] += 1
    return matrix


def segmentation_matrix(pred_dir, dataset, num_classes):
    """Pixel counts; labels as the dataset reads them (``reduce_zero_label`` applied)."""
    import mmcv

    reduce_zero = dataset.reduce_zero_label
    matrix = np.zeros((num_classes, num_classes), np.int64)

    def train_ids(raw):
        raw = raw.astype(np.int64)
        return np.where(raw == 0, 255, raw - 1) if reduce_zero else raw

    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        name = osp.splitext(osp.basename(info['img_path']))[0] + '.png'
        pred_path = osp.join(pred_dir, name)
        if not osp.isfile(pred_path):
            raise FileNotFoundError(f'{pred_path} is missing: write the predictions with '
                                    'tools/test.py CONFIG CKPT --out DIR')
        gt = train_ids(mmcv.imread(info['seg_map_path'], flag='unchanged'))
        pred = train_ids(mmcv.imread(pred_path, flag='unchanged'))
        valid = (gt < num_classes) & (pred < num_classes)
        matrix += np.bincount(gt[valid] * num_classes + pred[valid],
                              minlength=num_classes ** 2).reshape(num_classes, num_classes)
    return matrix


def plot_matrix(matrix, names, title, counts=False):
    """Heat map with one number per cell and the row totals; returns the figure."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(names)
    totals = matrix.sum(1)
    shown = matrix if counts else 100 * matrix / np.maximum(totals, 1)[:, None]
    side = max(4.5, 0.55 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shown, cmap='Blues', vmin=0, vmax=None if counts else 100)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label='count' if counts else '% of the row')
    ticks = [f'{name} ({total})' for name, total in zip(names, totals)]
    ax.set_xticks(range(n), names, rotation=45, ha='right', fontsize=11)
    ax.set_yticks(range(n), ticks, fontsize=11)
    ax.set_xlabel('prediction', fontsize=12)
    ax.set_ylabel('ground truth (total)', fontsize=12)
    ax.set_title(title, fontsize=13)
    if n <= 30:
        top = shown.max() or 1
        for i in range(n):
            for j in range(n):
                text = f'{shown[i, j]:d}' if counts else f'{shown[i, j]:.0f}'
                ax.text(j, i, text, ha='center', va='center', fontsize=11 if n <= 12 else 7,
                        color='white' if shown[i, j] > 0.6 * top else 'black')
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description='Confusion matrix of test predictions')
    parser.add_argument('config')
    parser.add_argument('predictions', help='tools/test.py --out result: a .pkl '
                        '(classification, detection) or a folder of label maps (segmentation)')
    parser.add_argument('--out', default='confusion_matrix.png', help='figure file')
    parser.add_argument('--counts', action='store_true', help='show counts, not row percentages')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: score threshold')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5,
                        help='detection: IoU for a detection to match a ground-truth box')
    parser.add_argument('--title', help='figure title (default: the config name)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = launch.load_config(args.config, args.cfg_options)
    scope = cfg.default_scope
    dataset = launch.build_dataset(cfg, 'test')
    names = list(dataset.metainfo['classes'])
    if scope == 'mmseg':
        if not osp.isdir(args.predictions):
            raise SystemExit(f'error: segmentation predictions are a folder of label maps '
                             f'(tools/test.py --out DIR); {args.predictions!r} is not one')
        matrix = segmentation_matrix(args.predictions, dataset, len(names))
    else:
        with open(args.predictions, 'rb') as f:
            results = pickle.load(f)
        if scope == 'mmdet':
            matrix = detection_matrix(results, dataset, len(names), args.score_thr,
                                      args.tp_iou_thr)
            names.append('background')
        else:
            matrix = classification_matrix(results, len(names))
    title = args.title or osp.splitext(osp.basename(args.config))[0]
    plot_matrix(matrix, names, title, args.counts).savefig(args.out, dpi=100)
    np.set_printoptions(linewidth=200)
    print(f'rows: ground truth, columns: prediction ({", ".join(names)})\n{matrix}\n'
          f'saved {args.out}')


if __name__ == '__main__':
    main()
