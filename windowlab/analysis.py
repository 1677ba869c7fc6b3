"""Model analysis shared by tools/analysis_tools (FLOPs, benchmarks).

FLOP convention (that of the official Swin/timm ``flops()`` and of papers' tables): one
multiply-add is one FLOP; normalisation layers count one FLOP per element; pooling,
activations, resizing and additions are free.
"""
import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import nn

from . import launch


def elementwise_flop(inputs, outputs):
    """Normalisation: one FLOP per input element."""
    from mmengine.analysis.jit_handles import get_shape
    n = 1
    for d in get_shape(inputs[0]):
        n *= d
    return n


IGNORED_OPS = ('aten::adaptive_avg_pool2d', 'aten::mean', 'aten::avg_pool2d', 'aten::max_pool2d',
               'aten::upsample_bilinear2d', 'aten::upsample_nearest2d', 'aten::grid_sampler')
NORM_OPS = ('aten::layer_norm', 'aten::batch_norm', 'aten::group_norm', 'aten::instance_norm')


class TensorMode(nn.Module):
    """``model(x)`` -> the raw outputs (``mode='tensor'``) of an OpenMMLab model, or of one of
    its submodules that takes the image (e.g. ``backbone``) when ``module`` is given."""

    def __init__(self, model, scope, shape, module=None):
        super().__init__()
        self.model, self.scope, self.shape, self.module = model, scope, shape, module

    def forward(self, x):
        if self.module is not None:
            return self.module(x)
        samples = None
        if self.scope == 'mmdet':
            from mmdet.structures import DetDataSample
            meta = dict(img_shape=self.shape, ori_shape=self.shape, pad_shape=self.shape,
                        batch_input_shape=self.shape, scale_factor=(1.0, 1.0))
            samples = [DetDataSample(metainfo=meta) for _ in range(x.shape[0])]
        return self.model(x, samples, mode='tensor')


def count_params_flops(cfg, shape, module=None):
    """``(params, flops)`` of ``cfg.model`` for one ``3 x H x W`` image; with ``module`` (e.g.
    ``'backbone'``, ``'decode_head'``), that submodule's share of the whole model's run."""
    model = launch.build_model(cfg).eval()
    if module and module not in dict(model.named_modules()):
        raise KeyError(f'the model has no submodule {module!r}; top-level ones: '
                       f'{[name for name, _ in model.named_children()]}')
    analyzer = FlopAnalyzer(TensorMode(model, cfg.default_scope, tuple(shape)),
                            (torch.randn(1, 3, *shape),))
    analyzer.set_op_handle(**{op: None for op in IGNORED_OPS})
    analyzer.set_op_handle(**{op: elementwise_flop for op in NORM_OPS})
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = analyzer.by_module()['model.' + module if module else '']
    params = parameter_count(model)[module or '']
    return params, flops
