"""Generate windowlab's toy datasets (COCO, ADE20K and ImageNet formats) under ``--root``.

Usage: ``python tools/make_toy_data.py [--root data] [--names toy-coco toy-ade toy-in]``
"""
import argparse

from windowlab.datasets.toy import TOY_DATASETS, make_toy_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='data', help='folder that receives toy-coco/, toy-ade/, toy-in/')
    parser.add_argument('--names', nargs='+', default=list(TOY_DATASETS), choices=list(TOY_DATASETS))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    for name, path in make_toy_data(args.root, args.names, seed=args.seed).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
