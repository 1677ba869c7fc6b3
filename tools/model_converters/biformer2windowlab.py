"""Convert an official BiFormer checkpoint (rayleizhu/BiFormer) to windowlab.

    python tools/model_converters/biformer2windowlab.py biformer_small_best.pth \
        biformer_small_windowlab.pth [--backbone-only]

* A classification release (``{'model': ...}`` with ``head.*``) becomes the mmpretrain
  ``ImageClassifier`` layout (``backbone.*`` with the final BatchNorm as ``backbone.norm3``,
  ``head.fc.*``). With ``--backbone-only`` the final BatchNorm and the head are dropped, which is
  what a detection/segmentation backbone wants as its pretrained weights (as ``BiFormer_mm``).
* A detection/segmentation checkpoint (``{'state_dict': {'backbone.*': ...}}`` of ``BiFormer_mm``)
  becomes ``backbone.*`` keys (``extra_norms.i`` -> ``norm{i}``); other parts (neck, heads) are
  not converted.

The output is ``{'state_dict': ..., 'meta': ...}``. ``BiFormer(init_cfg=dict(type='Pretrained'))``
also reads the official files directly.
"""
import argparse
import os.path as osp

import torch

from windowlab.converters.biformer import convert_biformer, convert_biformer_classifier
from windowlab.converters.checkpoint import load_checkpoint_file, unwrap_state_dict


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='drop the classifier head and final BatchNorm (dense pretraining)')
    return parser.parse_args()


def convert_file(src, dst, backbone_only=False):
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    is_classifier = 'head.weight' in state_dict
    if is_classifier and not backbone_only:
        converted, layout = convert_biformer_classifier(state_dict), 'ImageClassifier'
    else:
        converted, layout = convert_biformer(state_dict), 'backbone'
        converted = {f'backbone.{k}': v for k, v in converted.items()}
    meta = dict(source=osp.basename(src), converter='biformer2windowlab', model='BiFormer',
                layout=layout)
    torch.save({'state_dict': converted, 'meta': meta}, dst)
    return converted, meta


def main():
    args = parse_args()
    converted, meta = convert_file(args.src, args.dst, args.backbone_only)
    print(f'saved {len(converted)} tensors ({meta["layout"]} layout) to {args.dst}')


if __name__ == '__main__':
    main()
