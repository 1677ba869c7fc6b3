"""VWFormer (ICLR 2024): varying window attention and the VWFormer decode head for mmseg.

The mmseg head and the layer-decay constructor need mmseg, so they are imported only when mmseg's
registries load windowlab (``TASK_MODULES``, see :func:`windowlab.registry.load_projects`) or
when one of their names is used: ``from windowlab.projects.vwformer import VWHead``.
:class:`VWDecoder` is the same head's computation (same parameter names) in plain torch.
"""
from importlib import import_module

from .varying_window_attention import VaryingWindowAttention
from .vw_decoder import VWDecoder

TASK_MODULES = {'seg': ('.vw_head', '.layer_decay')}
_SEG_NAMES = {'VWHead': '.vw_head', 'HierarchicalLayerDecayOptimizerConstructor': '.layer_decay'}


def __getattr__(name):
    if name in _SEG_NAMES:
        return getattr(import_module(_SEG_NAMES[name], __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['HierarchicalLayerDecayOptimizerConstructor', 'VaryingWindowAttention', 'VWDecoder',
           'VWHead']
