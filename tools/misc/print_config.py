"""Print a config the way the tools see it: every ``_base_`` merged, ``--cfg-options`` applied.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--out FILE]
"""
import argparse

from mmengine.config import DictAction

from windowlab import launch
from windowlab.registry import TASK_OF_LIBRARY, TASKS


def main(argv=None):
    parser = argparse.ArgumentParser(description='Print the full (merged) config')
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.backbone.window_size=12')
    parser.add_argument('--out', help='also write the merged config to this .py file')
    args = parser.parse_args(argv)
    cfg = launch.load_config(args.config, args.cfg_options)
    print(f'Config: {args.config} (task: {TASKS[TASK_OF_LIBRARY[cfg.default_scope]][1]})\n')
    print(cfg.pretty_text)
    if args.out:
        cfg.dump(args.out)


if __name__ == '__main__':
    main()
