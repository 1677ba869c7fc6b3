"""Convert a Swin checkpoint to windowlab (``WLSwinTransformer``).

    python tools/model_converters/swin2windowlab.py swin_tiny_patch4_window7_224.pth \
        swin-t_in1k_windowlab.pth

* An official classification release (microsoft/Swin-Transformer, ``{'model': ...}``) becomes
  the mmpretrain ``ImageClassifier`` layout (``backbone.*`` with the final norm as ``norm3``,
  ``head.fc.*``): evaluate it with ``tools/test.py configs/swin/swin-t-p4-w7_16xb64_in1k.py``.
* A detector/segmentor checkpoint (official Swin-Transformer-Object-Detection, mmdet, mmseg) has
  its ``backbone.*`` keys converted; neck and heads are kept as they are.

The output is ``{'state_dict': ..., 'meta': ...}``. For backbone pre-training,
``init_cfg=dict(type='Pretrained', checkpoint=...)`` also reads the original files directly.
"""
import argparse
import os.path as osp

import torch

from windowlab.converters.checkpoint import load_checkpoint_file, unwrap_state_dict
from windowlab.converters.swin import convert_swin, convert_swin_classifier


def convert_file(src, dst):
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    if any(k.startswith('layers.') for k in state_dict) and 'head.weight' in state_dict:
        converted, layout = convert_swin_classifier(state_dict), 'ImageClassifier'
    elif any(k.startswith('backbone.') for k in state_dict):
        converted = {f'backbone.{k}': v for k, v in convert_swin(state_dict).items()}
        converted.update({k: v for k, v in state_dict.items() if not k.startswith('backbone.')})
        layout = 'detector/segmentor'
    else:
        converted = {f'backbone.{k}': v for k, v in convert_swin(state_dict).items()}
        layout = 'backbone'
    meta = dict(source=osp.basename(src), converter='swin2windowlab', layout=layout)
    torch.save({'state_dict': converted, 'meta': meta}, dst)
    return converted, meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='Swin checkpoint (official, mmdet, mmseg or mmpretrain)')
    parser.add_argument('dst', help='output path')
    args = parser.parse_args()
    converted, meta = convert_file(args.src, args.dst)
    print(f'saved {len(converted)} tensors ({meta["layout"]} layout) to {args.dst}')


if __name__ == '__main__':
    main()
