"""Parameters and FLOPs of the model of a config (classification, detection or segmentation).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--module backbone]

Counting convention (that of the official Swin/timm ``flops()`` and of papers' tables): one
multiply-add is one FLOP; normalisation layers count one FLOP per element; pooling,
activations and additions are free. Swin-T at 224: 28.29M parameters, 4.49 GFLOPs.
"""
import argparse

from mmengine.config import DictAction

import windowlab  # noqa: F401
from windowlab import launch
from windowlab.analysis import count_params_flops


def main():
    parser = argparse.ArgumentParser(description='Count parameters and FLOPs of a config\'s model')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='input size (default: 224 224 for classification, 512 512 otherwise)')
    parser.add_argument('--module', help='count only this submodule, e.g. backbone or decode_head')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = launch.load_config(args.config, args.cfg_options)
    shape = args.shape or ((224, 224) if cfg.default_scope == 'mmpretrain' else (512, 512))
    params, flops = count_params_flops(cfg, shape, args.module)
    what = f'{args.module} of ' if args.module else ''
    print(f'{what}{args.config}\ninput shape: 3x{shape[0]}x{shape[1]}\n'
          f'params: {params / 1e6:.2f}M ({params:,})\nflops: {flops / 1e9:.2f}G ({flops:,})')


if __name__ == '__main__':
    main()
