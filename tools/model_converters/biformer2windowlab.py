"""Convert an official BiFormer checkpoint (rayleizhu/BiFormer) to windowlab.

    python tools/model_converters/biformer2windowlab.py biformer_small_best.pth \
        biformer_small_windowlab.pth [--backbone-only] [--trust-checkpoint]

* A classification release (``{'model': ...}`` with ``head.*``) becomes the mmpretrain
  ``ImageClassifier`` layout (``backbone.*`` with the final BatchNorm as ``backbone.norm3``,
  ``head.fc.*``). With ``--backbone-only`` the final BatchNorm and the head are dropped, which is
  what a detection/segmentation backbone wants as its pretrained weights (as ``BiFormer_mm``).
* A detection/segmentation checkpoint (``{'state_dict': {'backbone.*': ...}}`` of ``BiFormer_mm``)
  has its ``backbone.*`` keys converted (``extra_norms.i`` -> ``norm{i}``); neck and heads pass
  through unchanged (their names are those of mmdet 3 / mmseg 1): evaluate it with
  ``tools/test.py`` and the matching ``configs/biformer/`` config.

The output is ``{'state_dict': ..., 'meta': ...}``, written atomically; the input is never
overwritten. ``BiFormer(init_cfg=dict(type='Pretrained'))``
also reads the official files directly.
"""
import argparse

from windowlab.projects.biformer.converter import convert_biformer, convert_biformer_classifier
from windowlab.converters.checkpoint import (add_trust_argument, convert_model_state,
                                             load_checkpoint_file, save_converted,
                                             unwrap_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='drop the classifier head and final BatchNorm (dense pretraining)')
    add_trust_argument(parser)
    return parser.parse_args(argv)


def convert_file(src, dst, backbone_only=False):
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    classifier = 'head.weight' in state_dict and not backbone_only
    converted, layout = convert_model_state(
        state_dict, convert_biformer, convert_biformer_classifier if classifier else None)
    meta = save_converted(converted, dst, src, 'biformer2windowlab', model='BiFormer',
                          layout=layout)
    return converted, meta


def main(argv=None):
    args = parse_args(argv)
    convert_file(args.src, args.dst, args.backbone_only)


if __name__ == '__main__':
    main()
