"""Convert an official shift-equivariant ViT checkpoint
(willding123/Shift-Equivariant-Vision-Transformers) to windowlab.

    python tools/model_converters/poly2windowlab.py {polyvit,polytwins,polyswin} SRC DST \
        [--trust-checkpoint]

The official files are ``{'model': state_dict}``. The output ``{'state_dict': ..., 'meta': ...}``
has the mmpretrain ``ImageClassifier`` layout (``backbone.*``, ``head.fc.*``) of windowlab's
``PolyViT`` / ``PolyTwins`` / ``PolySwin``; detectors and segmentors load its ``backbone.*`` part.
It is written atomically; the input is never overwritten.
"""
import argparse

from windowlab.converters.checkpoint import (add_trust_argument, load_checkpoint_file,
                                             save_converted)
from windowlab.projects.shift_equivariant.converter import CONVERTERS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', choices=sorted(CONVERTERS), help='official model class')
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src)
    state_dict = CONVERTERS[args.model](checkpoint)
    save_converted(state_dict, args.dst, args.src, 'poly2windowlab', model=args.model)


if __name__ == '__main__':
    main()
