"""Convert an official ViTAEv2-VSA checkpoint (ViTAE-Transformer/ViTAE-VSA) to windowlab.

    python tools/model_converters/vitaev2_vsa2windowlab.py ViTAEv2-VSA-S.pth.tar \
        vitaev2_vsa_s_windowlab.pth [--no-ema] [--trust-checkpoint]

* A classification release holds ``state_dict`` and ``state_dict_ema``; like the official
  detection code and ``validate.py``, the EMA weights are used unless ``--no-ema``. The output
  has the mmpretrain ``ImageClassifier`` layout (``backbone.*``, ``head.fc.*``); detectors and
  segmentors load its ``backbone.*`` part.
* An official detector (``Object-Detection``, ``{'state_dict': {'backbone.layers.*': ...}}``)
  has its ``backbone.*`` keys converted; neck and heads are kept as they are (their names are
  those of mmdet 3): evaluate it with ``tools/test.py`` and the matching ``configs/vsa/`` config.

The output ``{'state_dict': ..., 'meta': ...}`` is written atomically; the input is never
overwritten.
"""
import argparse

from windowlab.converters.checkpoint import (add_trust_argument, convert_model_state,
                                             load_checkpoint_file, save_converted)
from windowlab.projects.vsa.converter import (convert_vitaev2_vsa, convert_vitaev2_vsa_backbone,
                                      select_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--no-ema', action='store_true',
                        help="use 'state_dict' instead of 'state_dict_ema'")
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src)
    use_ema = not args.no_ema
    if use_ema and isinstance(checkpoint, dict) and 'state_dict_ema' not in checkpoint:
        print(f"{args.src} has no 'state_dict_ema'; converting its plain weights")
        use_ema = False
    state_dict = select_state_dict(checkpoint, use_ema=use_ema)
    detector = any(k.startswith('backbone.') for k in state_dict)
    state_dict, layout = convert_model_state(
        state_dict, convert_vitaev2_vsa_backbone, None if detector else convert_vitaev2_vsa)
    save_converted(state_dict, args.dst, args.src, 'vitaev2_vsa2windowlab', ema=use_ema,
                   model='ViTAEv2VSA', layout=layout)

if __name__ == '__main__':
    main()
