"""Export a config's model to ONNX or ``torch.export`` and verify the file against eager PyTorch.

    python tools/deployment/export.py CONFIG CHECKPOINT --format onnx|torch.export
        [--shape H W] [--dynamic] [--out FILE] [--module backbone] [--size-divisor N]
        [--min-shape H W] [--atol 1e-4] [--rtol 1e-4] [--benchmark N] [--cfg-options k=v ...]

What is exported (input: the *normalised* image batch ``[B, 3, H, W]``; the data
preprocessor's mean/std/BGR->RGB stay outside the graph):

* classification (mmpretrain) and segmentation (mmseg) configs: the whole model in ``tensor``
  mode (class logits; segmentation logits at the decode head's stride, before resizing);
* detection (mmdet) configs: backbone + neck (the multi-scale features; the heads' box
  decoding and NMS are mmdet's/mmdeploy's business);
* ``--module NAME``: that submodule only (e.g. ``backbone``), fed the image.

The file is verified before it is written (atomically): onnxruntime (CPU) for ONNX,
``torch.export.load`` for ``.pt2``, on the export size and, with ``--dynamic``, on two other
sizes. A difference above ``atol + rtol * max|eager|`` is an error (exit code 1, nothing
written), as is a dynamic graph that is valid only for some sizes.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import DictAction
from torch import nn

import windowlab  # noqa: F401
from windowlab import launch
from windowlab.analysis import TensorMode
from windowlab.deployment import FORMATS, ExportError, export_verified, latency


class DetectorFeatures(nn.Module):
    """``image -> neck(backbone(image))`` of an mmdet detector (``extract_feat``)."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, x):
        return self.detector.extract_feat(x)


def export_target(model, scope, shape, module=None):
    """The module to export: see the module docstring."""
    if module:
        names = dict(model.named_modules())
        if module not in names:
            raise ExportError(f'the model has no submodule {module!r}; top-level ones: '
                              f'{[name for name, _ in model.named_children()]}')
        return names[module]
    if scope == 'mmdet':
        return DetectorFeatures(model)
    return TensorMode(model, scope, tuple(shape))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="a whole-model checkpoint (tools/train.py's), or "
                        "'none' for the config's own initialisation")
    parser.add_argument('--format', required=True, choices=FORMATS)
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='export size (default: 224 224 for classification, 512 512 otherwise)')
    parser.add_argument('--dynamic', action='store_true', help='symbolic H and W (multiples of '
                        '--size-divisor), verified on two more sizes')
    parser.add_argument('--out', help='output file (default: next to the checkpoint, or in '
                        'work_dirs/deploy/, named after the config, .onnx or .pt2)')
    parser.add_argument('--module', help='export only this submodule, e.g. backbone')
    parser.add_argument('--size-divisor', type=int, default=None,
                        help="multiple of H and W in a dynamic export (default: the config's "
                        'pad_size_divisor, else 32)')
    parser.add_argument('--min-shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='smallest size a dynamic export must accept')
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--rtol', type=float, default=1e-4)
    parser.add_argument('--benchmark', type=int, default=0, metavar='N',
                        help='then time the file (onnxruntime CPU / .pt2) against eager PyTorch '
                        'at the export size, median of N runs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def default_out(args):
    ext = '.onnx' if args.format == 'onnx' else '.pt2'
    name = osp.splitext(osp.basename(args.config))[0] + (f'_{args.module}' if args.module else '')
    if args.checkpoint.lower() == 'none':
        return osp.join('work_dirs', 'deploy', name + ext)
    return osp.splitext(args.checkpoint)[0] + ext


def main(argv=None):
    args = parse_args(argv)
    cfg = launch.load_config(args.config, args.cfg_options)
    scope = cfg.default_scope
    shape = tuple(args.shape or ((224, 224) if scope == 'mmpretrain' else (512, 512)))
    divisor = args.size_divisor or (cfg.model.get('data_preprocessor') or {}).get(
        'pad_size_divisor') or 32
    model = launch.build_model(cfg)
    if args.checkpoint.lower() != 'none':
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    out = args.out or default_out(args)
    try:
        target = export_target(model.eval(), scope, shape, args.module)
        result = export_verified(target, out, shape, args.format, args.dynamic, divisor,
                                 args.min_shape, args.atol, args.rtol)
    except ExportError as e:
        print(f'export failed: {e}', file=sys.stderr)
        return 1
    what = 'dynamic H, W (multiples of %d)' % divisor if args.dynamic else 'static'
    print(f'wrote {out} ({args.format}, {what}, exported at {shape[0]}x{shape[1]}); max |export '
          f'- eager| = {result["max_diff"]:.3g} over {len(result["sizes"])} size(s)')
    if args.benchmark:
        eager_ms, export_ms = latency(target, out, args.format, shape, args.benchmark)
        print(f'latency at {shape[0]}x{shape[1]}, batch 1, {torch.get_num_threads()} CPU threads: '
              f'{args.format} {export_ms:.1f} ms, eager PyTorch {eager_ms:.1f} ms')
    return 0


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    sys.exit(main())
