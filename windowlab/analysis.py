"""Model analysis shared by tools/analysis_tools (FLOPs, benchmarks, visualisations).

FLOP convention (that of the official Swin/timm ``flops()`` and of papers' tables): one
multiply-add is one FLOP; normalisation layers count one FLOP per element; pooling,
activations, resizing and additions are free.
"""
import argparse
import copy
import statistics
import time

import numpy as np
import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import nn

from . import launch

# Input normalisation of a config without a data preprocessor (ImageNet, RGB 0-255).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def elementwise_flop(inputs, outputs):
    """Normalisation: one FLOP per input element."""
    from mmengine.analysis.jit_handles import get_shape
    n = 1
    for d in get_shape(inputs[0]):
        n *= d
    return n


def attention_flop(inputs, outputs):
    """``scaled_dot_product_attention``: the two matmuls, ``q k^T`` and ``P v``
    (``[*, L, E] x [*, S, E]`` and ``[*, L, S] x [*, S, Ev]``)."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


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


def flop_analyzer(model, inputs):
    """mmengine's ``FlopAnalyzer`` of ``model(*inputs)`` with windowlab's convention (above):
    fused attention counted, normalisation per element, free ops ignored, no warnings."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(**{op: None for op in IGNORED_OPS})
    analyzer.set_op_handle(**{op: elementwise_flop for op in NORM_OPS})
    analyzer.set_op_handle(**{'aten::scaled_dot_product_attention': attention_flop})
    return analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def count_params_flops(cfg, shape, module=None):
    """``(params, flops)`` of ``cfg.model`` for one ``3 x H x W`` image; with ``module`` (e.g.
    ``'backbone'``, ``'decode_head'``), that submodule's share of the whole model's run."""
    model = launch.build_model(cfg).eval()
    if module and module not in dict(model.named_modules()):
        raise KeyError(f'the model has no submodule {module!r}; top-level ones: '
                       f'{[name for name, _ in model.named_children()]}')
    analyzer = flop_analyzer(TensorMode(model, cfg.default_scope, tuple(shape)),
                             (torch.randn(1, 3, *shape),))
    with torch.no_grad():
        flops = analyzer.by_module()['model.' + module if module else '']
    params = parameter_count(model)[module or '']
    return params, flops


def load_backbone(config, checkpoint):
    """``(backbone, mean, std)``: the backbone of a config's model (eval mode) with the weights of
    ``checkpoint``, and the model's input normalisation.

    The checkpoint is read as the backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)``
    reads it (replacing the config's own ``init_cfg``): windowlab backbones take their official
    release files (converted on the fly) and whole-model checkpoints (their ``backbone.*``).
    """
    cfg = launch.load_config(str(config))
    model_cfg = copy.deepcopy(cfg.model)
    pretrained = dict(type='Pretrained', checkpoint=str(checkpoint))
    (model_cfg.backbone if 'backbone' in model_cfg else model_cfg).init_cfg = pretrained
    model = launch.build_in_scope(model_cfg, cfg.default_scope).eval()
    backbone = getattr(model, 'backbone', model)
    backbone.init_weights()
    preprocessor = cfg.model.get('data_preprocessor') or {}
    return (backbone, preprocessor.get('mean', IMAGENET_MEAN),
            preprocessor.get('std', IMAGENET_STD))


def load_image(path, img_size=None, divisor=1):
    """RGB ``uint8 [H, W, 3]`` of an image file, resized to ``img_size = (H, W)`` if given, then
    zero-padded at the bottom/right to a multiple of ``divisor``."""
    import mmcv
    img = mmcv.imread(path, channel_order='rgb')
    if img is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    if img_size is not None:
        img = mmcv.imresize(img, (img_size[1], img_size[0]))
    ph, pw = (-img.shape[0]) % divisor, (-img.shape[1]) % divisor
    return np.pad(img, ((0, ph), (0, pw), (0, 0))) if ph or pw else img


def image_to_input(img, mean, std):
    """``uint8 [H, W, 3]`` -> normalised ``[1, 3, H, W]`` float input."""
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    return ((x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))[None]


# --------------------------------------------------------------------------- benchmarks
def loss_of(out):
    """A scalar to backpropagate from any model output: the sum of the means of its tensors
    (a tensor, or nested lists / tuples / dicts of them)."""
    if isinstance(out, torch.Tensor):
        return out.float().mean()
    if isinstance(out, dict):
        out = list(out.values())
    return sum(loss_of(o) for o in out if isinstance(o, (torch.Tensor, list, tuple, dict)))


def sync(device):
    """Wait for the device's queued work (CUDA), so that a timer sees it finished."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _proc_status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def peak_memory_bytes(step, device='cpu'):
    """Memory that one call of ``step()`` needs at its peak, above the level before it.

    CUDA: ``torch.cuda.max_memory_allocated`` above the allocated memory before the step.
    CPU: growth of the process's peak resident set. Where Linux lets the peak be reset
    (``/proc/self/clear_refs``), it is reset before the step and the result is the peak during
    the step above the resident set before it (transient peaks of model building do not hide
    the step's); elsewhere it is the growth of ``ru_maxrss``. Run it in a fresh process, before
    any other step, so that the measure belongs to that step alone.
    """
    if str(device).startswith('cuda'):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    import gc
    import resource
    gc.collect()
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM (the peak resident set) to the current VmRSS
        base = _proc_status_kib('VmRSS')
        step()
        return (_proc_status_kib('VmHWM') - base) * 1024
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024


def median_seconds(steps, repeats, warmup=1, device='cpu'):
    """Median wall time (s) of each of ``steps`` (name -> callable), timed in alternation.

    Every round runs each step once, in order, so drifts of clock, temperature or machine load
    hit all steps alike; ``warmup`` untimed rounds come first. On CUDA the device is
    synchronised around every timed call.

    Returns:
        dict: name -> median seconds over ``repeats`` rounds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def visualizer_parser(description, out, stage, stage_help, layer_kind):
    """Arguments of every attention visualiser (``CONFIG CHECKPOINT IMAGE``, ``--out``,
    ``--stage``, ``--layer``, ``--img-size``); a tool adds its own to the returned parser."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default=out, help='output PNG')
    parser.add_argument('--stage', type=int, default=stage, help=stage_help)
    parser.add_argument('--layer', type=int, default=-1,
                        help=f'index of the {layer_kind} layer within the stage (default: last)')
    parser.add_argument('--img-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='resize the image first (default: keep its size)')
    return parser


def find_stage_layer(model, layer_type, stage, index, layer_kind, missing):
    """``(name, module)``: the ``index``-th ``layer_type`` module of stage ``stage`` (module
    names containing ``stages.{stage}.``); ``missing`` is the error when there is none."""
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, layer_type) and f'stages.{stage}.' in n]
    if not found:
        raise ValueError(missing)
    try:
        return found[index]
    except IndexError:
        raise ValueError(f'stage {stage} has {len(found)} {layer_kind} layers; --layer {index} '
                         'is out of range') from None


def rerun_layer(backbone, module, image, call):
    """Run ``backbone`` on ``image`` once and return ``call(module, args)``, made when
    ``module`` runs with its inputs ``args`` (e.g. ``module.forward(*args, return_x=True)``:
    ``.forward`` bypasses the hooks, so it does not recurse)."""
    captured = []
    handle = module.register_forward_hook(lambda mod, args, output: captured.append(call(mod, args)))
    try:
        with torch.no_grad():
            backbone(image)
    finally:
        handle.remove()
    return captured[0]
