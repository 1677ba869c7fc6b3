"""What every windowlab backbone (core or paper) does the same way: arch lookup, weight init,
activation checkpointing, frozen stages / norm_eval and layer depths for lr decay."""
import torch
import torch.utils.checkpoint
from mmengine.model.weight_init import trunc_normal_
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def resolve_arch(arch, archs):
    """``arch`` is a name in ``archs`` or a dict with (at least) the same keys; returns a copy."""
    required = list(next(iter(archs.values())))
    if isinstance(arch, str):
        if arch not in archs:
            raise ValueError(f'unknown arch {arch!r}; choose from {sorted(archs)} or pass a dict '
                             f'with {", ".join(required)}')
        return dict(archs[arch])
    missing = set(required) - set(arch)
    if missing:
        raise ValueError(f'custom arch is missing {sorted(missing)}')
    return dict(arch)


def init_linear_and_norm(module, norm_types=(nn.LayerNorm,), trunc_normal=trunc_normal_,
                         init_other=None):
    """The usual transformer init of every submodule of ``module``, in ``module.modules()`` order.

    ``nn.Linear``: truncated-normal weights (std 0.02), zero biases (if any); ``norm_types``:
    unit weights, zero biases (if affine). ``init_other(m)``, if given, is called on every other
    submodule (e.g. a convolution init), in the same pass.

    Args:
        trunc_normal (callable): ``(tensor, std=...)`` sampler: mmengine's (default) or torch's
            ``nn.init.trunc_normal_`` (timm-derived models); the same distribution.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, norm_types):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif init_other is not None:
            init_other(m)


def maybe_checkpoint(fn, *args, with_cp=False):
    """``fn(*args)``, through activation checkpointing when ``with_cp`` and autograd is on.

    The forward is recomputed in the backward pass (non-reentrant checkpoint, RNG state
    restored, so dropout / drop-path masks repeat): same gradients, less memory.
    """
    if with_cp and torch.is_grad_enabled():
        from .layers.attention import with_current_impl
        return torch.utils.checkpoint.checkpoint(with_current_impl(fn), *args,
                                                 use_reentrant=False)
    return fn(*args)


class DropInBackbone:
    """What users of mmdet / mmseg / mmpretrain backbones expect, for windowlab backbones.

    Mix in before :class:`~mmengine.model.BaseModule`. A subclass sets

    * ``self.depths``: blocks per stage (a single ``(depth,)`` for a plain ViT);
    * ``self.frozen_stages`` (int, ``-1``: none) and ``self.norm_eval`` (bool);

    and implements :meth:`frozen_parts` and :meth:`layer_position`. Then

    * frozen parts keep ``requires_grad=False`` and stay in eval mode through ``train()``
      (call :meth:`_freeze` at the end of ``__init__``);
    * ``norm_eval=True`` keeps every BatchNorm in eval mode while training;
    * :meth:`get_layer_depth` serves mmpretrain's ``LearningRateDecayOptimWrapperConstructor``
      and :meth:`layer_position` windowlab's per-stage rules (VWFormer's constructor).
    """

    def frozen_parts(self):
        """Modules and parameters frozen for ``self.frozen_stages``."""
        raise NotImplementedError

    def layer_position(self, name):
        """Where parameter ``name`` (a key of this backbone) sits.

        Returns ``('stem',)``, ``('block', stage, block)``, ``('downsample', stage)`` (the
        down-sampling between stage ``stage`` and ``stage + 1``) or ``None`` (anything after
        the blocks: output norms).
        """
        raise NotImplementedError

    def _check_frozen_stages(self, num_stages):
        if not -1 <= self.frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}] (-1: nothing frozen, '
                             f'0: the stem, k: the stem and the first k stages), got '
                             f'{self.frozen_stages}')

    def _freeze(self):
        for part in self.frozen_parts():
            if isinstance(part, nn.Parameter):
                part.requires_grad = False
                continue
            part.eval()
            for param in part.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def get_layer_depth(self, param_name, prefix=''):
        """``(layer_id, num_layers)`` of a parameter for layer-wise lr decay (mmpretrain's
        convention): the stem is layer 0, block ``j`` of stage ``s`` is
        ``sum(depths[:s]) + j + 1``, the down-sampling after stage ``s`` shares the layer of
        that stage's last block, everything else (output norms, heads: names without
        ``prefix``) is ``num_layers - 1``, with ``num_layers = sum(depths) + 2``.
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        position = self.layer_position(param_name[len(prefix):])
        if position is None:
            return num_layers - 1, num_layers
        if position[0] == 'stem':
            return 0, num_layers
        if position[0] == 'downsample':
            return sum(self.depths[:position[1] + 1]), num_layers
        _, stage, block = position
        return sum(self.depths[:stage]) + block + 1, num_layers


def is_symbolic(*sizes):
    """Whether any of ``sizes`` is symbolic (``torch.SymInt``: ``torch.export`` / the ONNX
    exporter tracing with dynamic H, W). Shape-dependent branches test this first, so that a
    dynamic export takes the branch that is right for every size (e.g. always pad, by a
    possibly-zero amount) instead of specialising the graph to the traced size."""
    return any(isinstance(s, torch.SymInt) for s in sizes)
