"""Convert an official VWFormer checkpoint (yan-hao-tian/VW) to windowlab.

The decode head is renamed for windowlab's ``VWHead``; a Swin backbone (mmseg layout) is
converted for ``WLSwinTransformer``; any other backbone (e.g. ConvNeXt) is kept as it is.

    python tools/model_converters/vwformer2windowlab.py vw_swin_b.pth vw_swin_b_windowlab.pth \
        [--trust-checkpoint]

The output is written atomically; the input is never overwritten.
"""
import argparse

from windowlab.converters.checkpoint import (add_trust_argument, load_checkpoint_file,
                                             save_converted, unwrap_state_dict)
from windowlab.converters.swin import convert_swin
from windowlab.projects.vwformer.converter import convert_vwformer


def convert_checkpoint(state_dict):
    """Whole segmentor state dict -> windowlab keys (``backbone.*`` and ``decode_head.*``)."""
    state_dict = convert_vwformer(state_dict)
    backbone = {k: v for k, v in state_dict.items() if k.startswith('backbone.')}
    if backbone:
        try:
            converted = convert_swin(backbone)
        except KeyError:
            print('backbone is not a Swin Transformer: its keys are kept unchanged')
        else:
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith('backbone.')}
            state_dict.update({f'backbone.{k}': v for k, v in converted.items()})
    return state_dict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint ({"state_dict": ...})')
    parser.add_argument('dst', help='output path')
    add_trust_argument(parser)
    args = parser.parse_args(argv)

    state_dict = unwrap_state_dict(load_checkpoint_file(args.src), keys=('state_dict',))
    converted = convert_checkpoint(state_dict)
    save_converted(converted, args.dst, args.src, 'vwformer2windowlab',
                   origin='yan-hao-tian/VW (VWHead)')


if __name__ == '__main__':
    main()
