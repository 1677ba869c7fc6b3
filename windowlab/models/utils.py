"""What every windowlab backbone (core or paper) does the same way: arch lookup, weight init."""
from mmengine.model.weight_init import trunc_normal_
from torch import nn


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
