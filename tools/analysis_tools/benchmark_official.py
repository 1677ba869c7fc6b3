"""windowlab side by side with the official code: speed, peak memory and equal outputs.

    python tools/analysis_tools/benchmark_official.py \\
        --official swin=/path/Swin-Transformer --official vsa=/path/ViTAE-VSA \\
        --official biformer=/path/BiFormer \\
        --official poly=/path/Shift-Equivariant-Vision-Transformers \\
        --official vw=/path/VW --extra-path /path/with/timm \\
        [--rows swin_t biformer_s ...] [--batch N] [--repeats 10] [--warmup 2] [--threads 2]
        [--reference] [--quick] [--no-memory] [--profile] [--json FILE]

``--quick`` (tests): batch 1, small inputs, the toy configs' narrow models, one repeat, no
warm-up; it implies ``--reference`` (the official models are full size).

Rows (``--rows``; CPU, fp32, ``--threads`` torch threads, batch from the row unless ``--batch``):

=================  ===========================================  ==============  ===============
row                model                                        input           official NAME
=================  ===========================================  ==============  ===============
swin_t             Swin-T classifier                            8x3x224x224     swin
vitaev2_vsa_s      ViTAEv2-VSA-S classifier                     8x3x224x224     vsa
swin_vsa_t         Swin-VSA-T vs windowlab Swin-T (cost of VSA) 8x3x224x224     (none exists)
biformer_s         BiFormer-S classifier                        8x3x224x224     biformer
biformer_s_dense   BiFormer-S backbone, n_win 8, auto_pad,      2x3x512x512     biformer
                   4 outputs with their LayerNorm2d
polyvit_s          PolyViT-S/16 classifier                      8x3x224x224     poly
polytwins_s        PolyTwins-SVT-S classifier                   8x3x224x224     poly
polyswin_t         PolySwin-T vs windowlab Swin-T               8x3x224x224     (windowlab only)
vwhead             VWHead (ADE20K Swin-T head: in 96/192/384/   maps of         vw
                   768, channels 512, 150 classes)              2x3x512x512
=================  ===========================================  ==============  ===============

For each row, in a fresh process: the official model is built with random non-degenerate weights
(every parameter and BatchNorm statistic; computed buffers such as Swin's ``attn_mask`` are kept),
its ``state_dict()`` is converted with windowlab's converter and loaded strictly into the windowlab
model; both run the same input in eval mode and the outputs must agree (max abs diff, relative to
``max(1, max|official|)``, at most ``TOLERANCE``; otherwise the tool stops with an error). Then
both are timed **alternately** (one of each per round), forward under ``torch.no_grad`` in
eval mode and forward+backward (mean of the outputs) in train mode, after ``--warmup`` steps of
each; the time is the median of ``--repeats``. Stochastic depth and dropout rates are 0 on both
sides (BatchNorm in train mode on both; the dense BiFormer's ``norm_eval`` is off on both). The
peak memory of one forward+backward is measured per side in a fresh process of its own, as
``benchmark.py`` does (:func:`windowlab.analysis.peak_memory_bytes`: peak RSS growth on CPU).

Columns: ``fwd speed-up`` and ``fwd+bwd speed-up`` = other side's time / windowlab's time
(> 1: windowlab is faster), with the two median times in ms; ``peak fwd+bwd memory`` = windowlab /
other side, with both in MiB; ``outputs max diff`` = max abs diff (eval mode).

The other side:

* ``official``: the official code at ``--official NAME=PATH`` (a checkout of the repository).
* ``reference``: without a checkout for the row, or with ``--reference``: windowlab's own exact
  path, :func:`windowlab.models.layers.attention.attention_impl` ``('reference')`` (plain matmul
  -> softmax -> matmul), and for BiFormer also ``impl='gather'`` (the released BRA algorithm),
  with the same weights.
* ``swin_vsa_t`` and ``polyswin_t`` have no official counterpart to time: the other side is
  windowlab's Swin-T (fused) and the speed-up is the time of Swin-T / the time of the model (so
  0.87 means 15% more time than Swin-T); the memory ratio is model / Swin-T; the diff is that of
  the model's fused path against its reference path.

How the official code is imported (by file path, never installed; a path from
``--extra-path`` is put first on ``sys.path``, e.g. a folder with ``timm`` installed by
``pip install --no-deps --target DIR timm``). Stubs, each for something unavailable here and
irrelevant to the computation:

* Swin (microsoft/Swin-Transformer): ``models/swin_transformer.py`` as is (its optional CUDA
  ``kernels.window_process`` import fails and is skipped by the file itself:
  ``fused_window_process=False``). No stub.
* ViTAEv2-VSA (ViTAE-Transformer/ViTAE-VSA): the package ``Image-Classification/vitaev2_vsa``
  loaded under another name, ``ViTAEv2_VSA_S(drop_path_rate=0)``. Stub: while it is built,
  ``torch.Tensor.cuda`` returns the tensor itself (``VSAWindowAttention.__init__`` moves its
  precomputed sampling grids, plain attributes, to the GPU).
* BiFormer (rayleizhu/BiFormer): ``models/biformer.py`` and ``ops/bra_legacy.py`` (the
  released gather BRA). Stubs: ``fairscale.nn.checkpoint.checkpoint_wrapper`` = identity
  (activation checkpointing is off in every released config); for the dense
  ``object_detection/models_mm/biformer_mm.py``: ``mmdet.models.builder.BACKBONES`` (a
  registry whose ``register_module`` returns the class), ``mmdet.utils.get_root_logger`` and
  ``mmcv_custom.load_checkpoint`` (used only to load a pretrained file, which is not done), and
  ``models_cls`` = the BiFormer package above. The ``models`` package ``__init__`` is not run
  (submodules are loaded from its folder).
* Shift-equivariant ViTs (willding123/Shift-Equivariant-Vision-Transformers):
  ``models/vision_transformer.py`` (``PolyViT('vit_small_patch16_224')``) and
  ``models/polytwins.py`` (``PolyTwins('twins_svt_small')``), on timm; the ``models``
  package ``__init__`` (which imports every model of the repository) is not run. Stub: the
  polyphase ordering (``models/poly_utils.py``) runs with ``use_gpu=False`` (its default
  ``True`` moves tensors to 'cuda').
* VW (yan-hao-tian/VW): ``mmsegmentation-custom/mmseg/models/decode_heads/vw_head.py``
  ``VWHead`` on the installed mmcv 2 (``ConvModule``, ``NonLocal2d``; its hard-coded SyncBN
  is ``nn.SyncBatchNorm``, which without a process group computes as BatchNorm2d). Stubs (the
  fork's mmseg 0.30 is not importable with mmcv 2): ``..builder.HEADS`` (a registry whose
  ``register_module`` returns the class), ``mmseg.ops.resize`` = mmseg 1.x's ``resize``, and
  ``.decode_head.BaseDecodeHead`` = the part of the fork's class the head uses (attributes
  ``in_channels``, ``channels``, ``num_classes``, ``conv_cfg``, ``norm_cfg``, ``act_cfg``,
  ``in_index``, ``align_corners``; ``conv_seg`` and ``Dropout2d`` in ``cls_seg``), no losses.

Only timing and memory are measured here; the exact parity of every port is tested on the
fixtures in ``tests/`` (``tests/fixtures/README.md``).
"""
import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # max abs diff / max(1, max |official output|)


# --------------------------------------------------------------------------- importing
def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _package(name, folder):
    """An empty package ``name`` whose submodules are the files of ``folder`` (its
    ``__init__.py``, if any, is not run)."""
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    sys.modules[name] = module
    return module


def _stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class _Registry:
    """Stand-in for an mmcv 1.x registry: ``register_module()`` returns the class."""

    def register_module(self, *args, **kwargs):
        if args and isinstance(args[0], type):
            return args[0]
        return lambda cls: cls


@contextlib.contextmanager
def _on_path(folder):
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def official_swin(root):
    return _load_file('official_swin', Path(root) / 'models/swin_transformer.py')


def official_vitaev2_vsa(root):
    folder = Path(root) / 'Image-Classification/vitaev2_vsa'
    spec = importlib.util.spec_from_file_location(
        'official_vitaev2_vsa', folder / '__init__.py', submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return importlib.import_module('official_vitaev2_vsa.models')


def official_biformer(root, dense=False):
    root = Path(root)
    _stub('fairscale')
    _stub('fairscale.nn')
    _stub('fairscale.nn.checkpoint', checkpoint_wrapper=lambda module, **kwargs: module)
    _package('official_biformer_models', root / 'models')
    with _on_path(root):  # ``from ops.bra_legacy import ...``
        cls_module = importlib.import_module('official_biformer_models.biformer')
    if not dense:
        return cls_module
    import mmdet.models  # noqa: F401  (the real package; only its ``builder`` is stubbed)
    saved = {k: sys.modules.get(k) for k in ('mmdet.models.builder', 'mmdet.utils')}
    try:
        _stub('mmdet.models.builder', BACKBONES=_Registry())
        _stub('mmdet.utils', get_root_logger=lambda *a, **k: None)
        _stub('mmcv_custom', load_checkpoint=None)
        sys.modules['models_cls'] = sys.modules['official_biformer_models']
        sys.modules['models_cls.biformer'] = cls_module
        return _load_file('official_biformer_mm',
                          root / 'object_detection/models_mm/biformer_mm.py')
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def official_poly(root, file):
    _package('models', Path(root) / 'models')
    module = importlib.import_module(f'models.{file}')
    # The polyphase ordering defaults to ``use_gpu=True`` (tensors moved to 'cuda'): run it on
    # the CPU, as the fixtures were made.
    poly_utils = importlib.import_module('models.poly_utils')
    poly_utils.PolyOrder.forward.__defaults__ = (2, False, False)
    init = poly_utils.PolyOrderModule.__init__

    def init_on_cpu(self, *args, **kwargs):
        init(self, *args, **dict(kwargs, use_gpu=False))

    poly_utils.PolyOrderModule.__init__ = init_on_cpu
    return module


def official_vw(root):
    import torch.nn.functional as F  # noqa: F401
    from mmseg.models.utils import resize
    from torch import nn

    class BaseDecodeHead(nn.Module):
        """What VWHead uses of the fork's mmseg 0.30 ``BaseDecodeHead`` (no losses)."""

        def __init__(self, in_channels, channels, *, num_classes, dropout_ratio=0.1,
                     conv_cfg=None, norm_cfg=None, act_cfg=dict(type='ReLU'), in_index=-1,
                     input_transform=None, align_corners=False, **unused):
            super().__init__()
            self.in_channels, self.channels, self.num_classes = in_channels, channels, num_classes
            self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
            self.in_index, self.input_transform = in_index, input_transform
            self.align_corners = align_corners
            self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
            self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

        def cls_seg(self, feat):
            if self.dropout is not None:
                feat = self.dropout(feat)
            return self.conv_seg(feat)

    models = Path(root) / 'mmsegmentation-custom/mmseg/models'
    _package('official_vw', models)
    _stub('official_vw.builder', HEADS=_Registry())
    _package('official_vw.decode_heads', models / 'decode_heads')
    _stub('official_vw.decode_heads.decode_head', BaseDecodeHead=BaseDecodeHead)
    import mmseg
    saved = sys.modules.get('mmseg.ops')
    try:
        mmseg.ops = _stub('mmseg.ops', resize=resize)
        return _load_file('official_vw.decode_heads.vw_head', models / 'decode_heads/vw_head.py')
    finally:
        del mmseg.ops
        if saved is None:
            sys.modules.pop('mmseg.ops', None)


# --------------------------------------------------------------------------- weights
def randomize_(model, seed=0):
    """Random non-degenerate weights: every parameter (matrices and convs N(0, 1/fan_in),
    vectors named ``*weight`` U(0.5, 1.5), other vectors and tables N(0, 0.1) / N(0, 0.3)) and
    the BatchNorm running statistics; computed buffers (indices, masks) are kept."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'relative_position_bias_table' in name or name.endswith(('cls_token', 'table')):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            elif name.endswith('weight'):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return model


# --------------------------------------------------------------------------- rows
class Cls:
    """``model(x)`` -> logits of a windowlab classifier (``mode='tensor'``)."""

    def __new__(cls, model):
        from windowlab.analysis import TensorMode
        return TensorMode(model, 'mmpretrain', None)


def windowlab_classifier(config, **backbone):
    from windowlab import launch
    options = {'model.backbone.drop_path_rate': 0.0}
    options.update({f'model.backbone.{k}': v for k, v in backbone.items()})
    cfg = launch.load_config(str(REPO / 'configs' / config), options)
    return launch.build_model(cfg)


def _strict(model, state_dict):
    from windowlab.analysis import TensorMode
    from windowlab.converters import load_state_dict_strict
    load_state_dict_strict(model.model if isinstance(model, TensorMode) else model, state_dict)
    return model


class Row:
    label = ''
    official = None  # the --official NAME, or None for a windowlab-only "cost" row
    batch = 8
    size = 224
    quick_size = 64  # with the toy configs' narrow models
    n_outputs = 1
    configs = ()  # classifier rows: (toy config, full config) under configs/
    backbone_options = {}  # model.backbone options of both

    def inputs(self, batch, quick):
        import torch
        g = torch.Generator().manual_seed(1)
        side = self.quick_size if quick else self.size
        return (torch.randn(batch, 3, side, side, generator=g),)

    def input_label(self, batch, quick):
        side = self.quick_size if quick else self.size
        return f'{batch}x{side}²'

    def windowlab(self, quick, **backbone):
        """The classifier of :attr:`configs` (the toy one with ``quick``)."""
        toy, full = self.configs
        return Cls(windowlab_classifier(toy if quick else full,
                                        **dict(self.backbone_options, **backbone)))

    def reference(self, quick):
        """The windowlab model of the reference side (same weights as :meth:`windowlab`)."""
        return self.windowlab(quick)

    def build_official(self, root, quick):
        raise NotImplementedError

    def convert(self, state_dict):
        raise NotImplementedError


class SwinT(Row):
    label = 'Swin-T cls'
    official = 'swin'
    configs = ('swin/swin-mini-p4-w7_toy-in.py', 'swin/swin-t-p4-w7_16xb64_in1k.py')

    def build_official(self, root, quick):
        return official_swin(root).SwinTransformer(
            img_size=self.quick_size if quick else self.size, drop_path_rate=0.0)

    def convert(self, state_dict):
        from windowlab.converters.swin import convert_swin_classifier
        return convert_swin_classifier(state_dict)


class ViTAEv2VSAS(Row):
    label = 'ViTAEv2-VSA-S cls'
    official = 'vsa'
    quick_size = 112  # the full model (no toy classifier config)
    configs = ('vsa/vitaev2-vsa-s_8xb128_in1k.py',) * 2

    def build_official(self, root, quick):
        import torch
        cuda = torch.Tensor.cuda
        torch.Tensor.cuda = lambda self, *args, **kwargs: self  # VSA's sampling grids
        try:
            return official_vitaev2_vsa(root).ViTAEv2_VSA_S(
                drop_path_rate=0.0, img_size=self.quick_size if quick else self.size)
        finally:
            torch.Tensor.cuda = cuda

    def convert(self, state_dict):
        from windowlab.projects.vsa.converter import convert_vitaev2_vsa
        return convert_vitaev2_vsa(state_dict)


class BiFormerS(Row):
    label = 'BiFormer-S cls'
    official = 'biformer'
    configs = ('biformer/biformer-mini_toy-in.py', 'biformer/biformer-s_16xb128_in1k.py')

    def windowlab(self, quick, impl='fast'):
        return super().windowlab(quick, attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl))

    def reference(self, quick):
        return self.windowlab(quick, impl='gather')

    def build_official(self, root, quick):
        return official_biformer(root).biformer_small(drop_path_rate=0.0)

    def convert(self, state_dict):
        from windowlab.projects.biformer.converter import convert_biformer_classifier
        return convert_biformer_classifier(state_dict)


class BiFormerSDense(BiFormerS):
    label = 'BiFormer-S dense (n_win 8, auto_pad)'
    batch = 2
    size = 512
    quick_size = 128
    n_outputs = 4

    def windowlab(self, quick, impl='fast'):
        from windowlab.projects.biformer import BiFormer
        arch = dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1),
                    num_heads=(1, 2, 4, 8)) if quick else 'small'
        return BiFormer(arch, n_win=8, auto_pad=True, out_indices=(0, 1, 2, 3),
                        out_norm_cfg=dict(type='LN2d'), drop_path_rate=0.0,
                        attn_cfg=dict(type='BiLevelRoutingAttention', impl=impl))

    def build_official(self, root, quick):
        mm = official_biformer(root, dense=True)
        return mm.BiFormer_mm(
            pretrained=None, norm_eval=False, depth=[4, 4, 18, 4],
            embed_dim=[64, 128, 256, 512], mlp_ratios=[3, 3, 3, 3], n_win=8,
            kv_downsample_mode='identity', kv_per_wins=[-1, -1, -1, -1], topks=[1, 4, 16, -2],
            side_dwconv=5, before_attn_dwconv=3, layer_scale_init_value=-1,
            qk_dims=[64, 128, 256, 512], head_dim=32, param_routing=False, diff_routing=False,
            soft_routing=False, pre_norm=True, pe=None, auto_pad=True, drop_path_rate=0.0)

    def convert(self, state_dict):
        from windowlab.projects.biformer.converter import convert_biformer
        return convert_biformer(state_dict)


class PolyViTS(Row):
    label = 'PolyViT-S/16 cls'
    official = 'poly'
    configs = ('shift_equivariant/polyvit-mini-p8_toy-in.py',
               'shift_equivariant/polyvit-s-p16_16xb64_in1k.py')
    backbone_options = dict(drop_rate=0.0)

    def build_official(self, root, quick):
        return official_poly(root, 'vision_transformer').PolyViT('vit_small_patch16_224')

    def convert(self, state_dict):
        from windowlab.projects.shift_equivariant.converter import convert_polyvit
        return convert_polyvit(state_dict)


class PolyTwinsS(Row):
    label = 'PolyTwins-SVT-S cls'
    official = 'poly'
    configs = ('shift_equivariant/polytwins-mini_toy-in.py',
               'shift_equivariant/polytwins-svt-s_16xb64_in1k.py')

    def build_official(self, root, quick):
        return official_poly(root, 'polytwins').PolyTwins('twins_svt_small')

    def convert(self, state_dict):
        from windowlab.projects.shift_equivariant.converter import convert_polytwins
        return convert_polytwins(state_dict)


class SwinVSAT(Row):
    label = 'Swin-VSA-T cls vs windowlab Swin-T'
    configs = ('vsa/swin-vsa-mini-p4-w7_toy-in.py', 'vsa/swin-vsa-t-p4-w7_16xb64_in1k.py')

    def base(self, quick):
        return SwinT().windowlab(quick)


class PolySwinT(Row):
    label = 'PolySwin-T cls vs windowlab Swin-T'
    configs = ('shift_equivariant/polyswin-mini-p4-w2_toy-in.py',
               'shift_equivariant/polyswin-t-p4-w7_16xb64_in1k.py')

    def base(self, quick):
        return SwinT().windowlab(quick)


class VWHeadRow(Row):
    label = 'VWHead (Swin-T maps)'
    official = 'vw'
    batch = 2
    size = 512
    quick_size = 128
    KWARGS = dict(in_channels=[96, 192, 384, 768], in_index=[0, 1, 2, 3], channels=512,
                  dropout_ratio=0.1, num_classes=150, short_cut=True, nheads=1,
                  align_corners=False)

    QUICK = dict(in_channels=[16, 32, 48, 64], channels=64, num_classes=5)

    def kwargs(self, quick):
        return {**self.KWARGS, **self.QUICK} if quick else self.KWARGS

    def inputs(self, batch, quick):
        import torch
        g = torch.Generator().manual_seed(1)
        side = self.quick_size if quick else self.size
        return ([torch.randn(batch, c, side // s, side // s, generator=g)
                 for c, s in zip(self.kwargs(quick)['in_channels'], (4, 8, 16, 32))],)

    def input_label(self, batch, quick):
        return f'maps of {super().input_label(batch, quick)}'

    def windowlab(self, quick):
        import windowlab.projects.vwformer  # noqa: F401
        from windowlab.projects.vwformer import VWHead
        return VWHead(**self.kwargs(quick), norm_cfg=dict(type='BN', requires_grad=True))

    def build_official(self, root, quick):
        return official_vw(root).VWHead(**self.kwargs(quick), norm_cfg=dict(type='SyncBN',
                                                                       requires_grad=True))

    def convert(self, state_dict):
        from windowlab.converters import unwrap_state_dict
        from windowlab.projects.vwformer.converter import convert_vwformer
        converted = convert_vwformer({'decode_head.' + k: v for k, v in state_dict.items()})
        return unwrap_state_dict(converted, prefix='decode_head')


ROWS = {'swin_t': SwinT(), 'vitaev2_vsa_s': ViTAEv2VSAS(), 'swin_vsa_t': SwinVSAT(),
        'biformer_s': BiFormerS(), 'biformer_s_dense': BiFormerSDense(),
        'polyvit_s': PolyViTS(), 'polytwins_s': PolyTwinsS(), 'polyswin_t': PolySwinT(),
        'vwhead': VWHeadRow()}


# --------------------------------------------------------------------------- one row, two sides
def _kind(row, args):
    if row.official is None:
        return 'swin-t'
    if args.reference or args.quick or row.official not in args.official:
        return 'reference'
    return 'official'


def build_sides(row, args):
    """``(windowlab, other, other_context)`` with equal weights where they are ports."""
    import torch
    from windowlab.models.layers.attention import attention_impl
    kind = _kind(row, args)
    torch.manual_seed(0)
    if kind == 'swin-t':
        return row.windowlab(args.quick), row.base(args.quick), contextlib.nullcontext()
    wl = row.windowlab(args.quick)
    if kind == 'official':
        other = randomize_(row.build_official(args.official[row.official], args.quick))
        _strict(wl, row.convert(other.state_dict()))
        return wl, other, contextlib.nullcontext()
    randomize_(wl)
    other = row.reference(args.quick)
    other.load_state_dict(wl.state_dict(), strict=True)
    return wl, other, attention_impl('reference')


def _max_diff(a, b):
    import torch
    if isinstance(a, torch.Tensor):
        return (a - b).abs().max().item(), a.abs().max().item()
    pairs = [_max_diff(x, y) for x, y in zip(a, b)]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


@contextlib.contextmanager
def official_argmax_anchors():
    """windowlab's polyphase anchors with the official rule, the plain argmax of the component
    norms (no tie tolerance). windowlab's tie rule (``windowlab/models/layers/polyphase.py``)
    deliberately picks another component when two norms are within ``TIE_RTOL`` (1e-4), which
    random inputs hit now and then (one image of 8 for PolyTwins-S); the output check compares
    the ports, not that rule. Timings run with the rule, as models do."""
    from windowlab.models.layers import polyphase
    defaults = polyphase.select_anchors.__defaults__
    polyphase.select_anchors.__defaults__ = (*defaults[:-1], 0.0)
    try:
        yield
    finally:
        polyphase.select_anchors.__defaults__ = defaults


def check_outputs(row, wl, other, ctx, inputs, kind):
    """Max abs diff of the eval outputs (for a "cost" row: the model's fused path against its
    reference path); raises if above ``TOLERANCE`` (relative to ``max(1, max|out|)``)."""
    import torch
    from windowlab.models.layers.attention import attention_impl
    wl.eval()
    other.eval()
    with torch.no_grad(), official_argmax_anchors():
        out = wl(*inputs)
        if kind == 'swin-t':
            with attention_impl('reference'):
                expected = wl(*inputs)
        else:
            with ctx:
                expected = other(*inputs)
    if isinstance(out, torch.Tensor) != isinstance(expected, torch.Tensor) or (
            not isinstance(out, torch.Tensor) and len(out) != len(expected)):
        raise RuntimeError(f'{row.label}: outputs differ in structure')
    diff, scale = _max_diff(expected, out)
    if not diff <= TOLERANCE * max(1.0, scale):
        raise RuntimeError(f'{row.label}: windowlab and {kind} outputs differ: max abs diff '
                           f'{diff:.3g} > {TOLERANCE} x max(1, {scale:.3g})')
    return diff, scale


def make_steps(model, ctx, inputs):
    import torch
    from windowlab.analysis import loss_of

    def fwd():
        with torch.no_grad(), ctx:
            model(*inputs)

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        with ctx:
            loss_of(model(*inputs)).backward()

    return fwd, fwd_bwd


def run_row(name, args):
    """In this process: outputs check and alternate timings of one row (a dict)."""
    import torch
    from windowlab.analysis import median_seconds
    torch.set_num_threads(args.threads)
    row = ROWS[name]
    kind = _kind(row, args)
    batch = args.batch or (1 if args.quick else row.batch)
    inputs = row.inputs(batch, args.quick)
    wl, other, ctx = build_sides(row, args)
    diff, scale = check_outputs(row, wl, other, ctx, inputs, kind)
    wl_fwd, wl_train = make_steps(wl, contextlib.nullcontext(), inputs)
    ot_fwd, ot_train = make_steps(other, ctx, inputs)

    def eval_mode():
        wl.eval(), other.eval()

    def train_mode():
        wl.train(), other.train()

    def timed(mode, wl_step, other_step):
        """Median seconds of (windowlab, other), run in alternation."""
        times = median_seconds({'wl': lambda: (mode(), wl_step()),
                                'other': lambda: (mode(), other_step())},
                               args.repeats, args.warmup)
        return times['wl'], times['other']

    fwd = timed(eval_mode, wl_fwd, ot_fwd)
    train = timed(train_mode, wl_train, ot_train)
    result = dict(row=name, kind=kind, input=row.input_label(batch, args.quick), diff=diff,
                  scale=scale, fwd=fwd, fwd_bwd=train)
    if args.profile:
        result['profile'] = profile_side(wl_train, train_mode)
    return result


def profile_side(step, set_mode, n=12):
    """The top ops (self CPU time) of one forward+backward."""
    from torch.profiler import ProfilerActivity, profile
    set_mode()
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=n)


def memory_of(name, side, args):
    """In this (fresh) process: peak memory of one forward+backward of one side."""
    import torch
    from windowlab.analysis import peak_memory_bytes
    torch.set_num_threads(args.threads)
    row = ROWS[name]
    kind = _kind(row, args)
    batch = args.batch or (1 if args.quick else row.batch)
    inputs = row.inputs(batch, args.quick)
    ctx = contextlib.nullcontext()
    torch.manual_seed(0)
    if side == 'windowlab':
        model = row.windowlab(args.quick)
    elif kind == 'swin-t':
        model = row.base(args.quick)
    elif kind == 'official':
        model = row.build_official(args.official[row.official], args.quick)
    else:
        from windowlab.models.layers.attention import attention_impl
        model, ctx = row.reference(args.quick), attention_impl('reference')
    model.train()
    _, step = make_steps(model, ctx, inputs)
    return dict(peak_mib=peak_memory_bytes(step) / 2**20)


# --------------------------------------------------------------------------- driver
def _subprocess(args, *extra):
    cmd = [sys.executable, __file__, *extra, '--threads', str(args.threads),
           '--repeats', str(args.repeats), '--warmup', str(args.warmup)]
    cmd += [f'--official={k}={v}' for k, v in args.official.items()]
    cmd += [f'--extra-path={p}' for p in args.extra_path]
    cmd += ['--batch', str(args.batch)] if args.batch else []
    cmd += ['--reference'] * args.reference + ['--quick'] * args.quick
    cmd += ['--profile'] * args.profile
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
        OMP_NUM_THREADS=str(args.threads),
        MALLOC_MMAP_THRESHOLD_='131072')  # large blocks go back to the OS when freed
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'{" ".join(extra)} failed (exit code {proc.returncode})')
    return json.loads(proc.stdout.strip().splitlines()[-1])


OTHER_LABEL = {'official': 'official', 'reference': 'windowlab reference',
               'swin-t': 'windowlab Swin-T'}


def table(results):
    lines = ['| model | input | vs | fwd speed-up | fwd+bwd speed-up | '
             'peak fwd+bwd memory ratio | outputs max diff |',
             '|---|---|---|---|---|---|---|']
    for r in results:
        row = ROWS[r['row']]
        (wl_f, ot_f), (wl_t, ot_t) = r['fwd'], r['fwd_bwd']
        mem = '-'
        if 'memory' in r:
            wl_m, ot_m = r['memory']
            mem = f'{wl_m / ot_m:.2f}x ({wl_m:.0f} vs {ot_m:.0f} MiB)'
        diff = f"{r['diff']:.1e}" + (' (fused vs reference)' if r['kind'] == 'swin-t' else '')
        lines.append(
            f"| {row.label} | {r['input']} | {OTHER_LABEL[r['kind']]} | "
            f'{ot_f / wl_f:.2f}x ({ot_f * 1e3:.0f} / {wl_f * 1e3:.0f} ms) | '
            f'{ot_t / wl_t:.2f}x ({ot_t * 1e3:.0f} / {wl_t * 1e3:.0f} ms) | {mem} | {diff} |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--official', action='append', default=[], metavar='NAME=PATH',
                        help=f'an official checkout; NAME one of '
                             f'{sorted({r.official for r in ROWS.values() if r.official})}')
    parser.add_argument('--extra-path', action='append', default=[],
                        help='put this folder first on sys.path (e.g. where timm is installed)')
    parser.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    parser.add_argument('--batch', type=int, help='batch size of every row (default: the row\'s)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--reference', action='store_true',
                        help="compare with windowlab's reference path, not the official code")
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes for a test: batch 1, small inputs, the toy configs\' '
                             'narrow models, 1 repeat, no warm-up; implies --reference')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory processes')
    parser.add_argument('--profile', action='store_true',
                        help="print the top ops of windowlab's forward+backward for each row")
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--_row', help=argparse.SUPPRESS)
    parser.add_argument('--_memory', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    official = {}
    for item in args.official:
        key, sep, path = item.partition('=')
        if not sep or not Path(path).is_dir():
            parser.error(f'--official {item!r}: expected NAME=PATH of a folder')
        official[key] = str(Path(path).resolve())
    args.official = official
    if args.quick:
        args.repeats, args.warmup = min(args.repeats, 1), 0
    return args


def main(argv=None):
    args = parse_args(argv)
    for path in reversed(args.extra_path):
        sys.path.insert(0, path)
    if args._row or args._memory:
        import windowlab  # noqa: F401
        result = run_row(args._row, args) if args._row else memory_of(*args._memory, args)
        print(json.dumps(result))
        return
    results, failed = [], []
    for name in args.rows:
        kind = _kind(ROWS[name], args)
        print(f'{name}: windowlab vs {OTHER_LABEL[kind]} ...', file=sys.stderr, flush=True)
        try:
            result = _subprocess(args, '--_row', name)
            if not args.no_memory:
                result['memory'] = [_subprocess(args, '--_memory', name, side)['peak_mib']
                                    for side in ('windowlab', 'other')]
        except SystemExit as e:
            failed.append(f'{name}: {e}')
            print(f'  FAILED: {e}', file=sys.stderr, flush=True)
            continue
        if 'profile' in result:
            print(f'\n{name}: windowlab forward+backward, top ops\n{result.pop("profile")}',
                  file=sys.stderr)
        print(f"  diff {result['diff']:.2e} (max |out| {result['scale']:.3g}), "
              f"fwd {result['fwd']}, fwd+bwd {result['fwd_bwd']}, "
              f"memory {result.get('memory')}", file=sys.stderr, flush=True)
        results.append(result)
    print(table(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if failed:
        raise SystemExit('failed rows:\n' + '\n'.join(failed))


if __name__ == '__main__':
    main()
