"""Convert a Swin checkpoint to windowlab (``WLSwinTransformer``).

    python tools/model_converters/swin2windowlab.py swin_tiny_patch4_window7_224.pth \
        swin-t_in1k_windowlab.pth [--backbone-only] [--trust-checkpoint]

* An official classification release (microsoft/Swin-Transformer, ``{'model': ...}``) becomes
  the mmpretrain ``ImageClassifier`` layout (``backbone.*`` with the final norm as ``norm3``,
  ``head.fc.*``): evaluate it with ``tools/test.py configs/swin/swin-t-p4-w7_16xb64_in1k.py``.
  With ``--backbone-only`` the head and the final norm are dropped, as the official detection
  code does when it initialises a backbone from such a file.
* A detector/segmentor checkpoint (official Swin-Transformer-Object-Detection, mmdet, mmseg) has
  its ``backbone.*`` keys converted; neck and heads are kept as they are (their names are those
  of mmdet 3 / mmseg 1): evaluate it with ``tools/test.py`` and the matching config.

The output is ``{'state_dict': ..., 'meta': ...}``, written atomically; the input is never
overwritten. For backbone pre-training, ``init_cfg=dict(type='Pretrained', checkpoint=...)``
also reads the original files directly.
"""
import argparse

from windowlab.converters.checkpoint import (add_trust_argument, convert_model_state,
                                             load_checkpoint_file, save_converted,
                                             unwrap_state_dict)
from windowlab.converters.swin import convert_swin, convert_swin_classifier


def convert_file(src, dst, backbone_only=False):
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    classifier = (any(k.startswith('layers.') for k in state_dict) and 'head.weight' in state_dict
                  and not backbone_only)  # an official classifier, converted whole
    converted, layout = convert_model_state(
        state_dict, convert_swin, convert_swin_classifier if classifier else None)
    meta = save_converted(converted, dst, src, 'swin2windowlab', layout=layout)
    return converted, meta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='Swin checkpoint (official, mmdet, mmseg or mmpretrain)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--backbone-only', action='store_true',
                        help='official classifier: drop the head and final norm '
                        '(dense pretraining)')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    convert_file(args.src, args.dst, args.backbone_only)


if __name__ == '__main__':
    main()
