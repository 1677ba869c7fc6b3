"""Convert an official ViTAEv2-VSA checkpoint (ViTAE-Transformer/ViTAE-VSA) to windowlab.

    python tools/model_converters/vitaev2_vsa2windowlab.py ViTAEv2-VSA-S.pth.tar \
        vitaev2_vsa_s_windowlab.pth [--no-ema]

The release files hold ``state_dict`` and ``state_dict_ema``; like the official detection
code and ``validate.py``, the EMA weights are used unless ``--no-ema``. The output
``{'state_dict': ..., 'meta': ...}`` has the mmpretrain ``ImageClassifier`` layout
(``backbone.*``, ``head.fc.*``); detectors and segmentors load its ``backbone.*`` part.
"""
import argparse
import os.path as osp

import torch

from windowlab.converters.checkpoint import load_checkpoint_file
from windowlab.converters.vsa import convert_vitaev2_vsa, select_state_dict


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--no-ema', action='store_true',
                        help="use 'state_dict' instead of 'state_dict_ema'")
    return parser.parse_args()


def main():
    args = parse_args()
    checkpoint = load_checkpoint_file(args.src)
    use_ema = not args.no_ema
    if use_ema and isinstance(checkpoint, dict) and 'state_dict_ema' not in checkpoint:
        print(f"{args.src} has no 'state_dict_ema'; converting its plain weights")
        use_ema = False
    state_dict = convert_vitaev2_vsa(select_state_dict(checkpoint, use_ema=use_ema))
    meta = dict(source=osp.basename(args.src), ema=use_ema, converter='vitaev2_vsa2windowlab',
                model='ViTAEv2VSA')
    torch.save({'state_dict': state_dict, 'meta': meta}, args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
