"""Convert an official shift-equivariant ViT checkpoint
(willding123/Shift-Equivariant-Vision-Transformers) to windowlab.

    python tools/model_converters/poly2windowlab.py {polyvit,polytwins,polyswin} SRC DST

The official files are ``{'model': state_dict}``. The output ``{'state_dict': ..., 'meta': ...}``
has the mmpretrain ``ImageClassifier`` layout (``backbone.*``, ``head.fc.*``) of windowlab's
``PolyViT`` / ``PolyTwins`` / ``PolySwin``; detectors and segmentors load its ``backbone.*`` part.
"""
import argparse
import os.path as osp

import torch

from windowlab.converters.checkpoint import load_checkpoint_file
from windowlab.converters.shift_equivariant import CONVERTERS


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', choices=sorted(CONVERTERS), help='official model class')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    return parser.parse_args()


def main():
    args = parse_args()
    checkpoint = load_checkpoint_file(args.src)
    state_dict = CONVERTERS[args.model](checkpoint)
    meta = dict(source=osp.basename(args.src), converter='poly2windowlab', model=args.model)
    torch.save({'state_dict': state_dict, 'meta': meta}, args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
