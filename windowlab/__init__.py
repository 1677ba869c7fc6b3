"""windowlab: window- and sparse-attention backbones for mmpretrain, mmdet and mmseg.

``import windowlab`` makes the stack work on current torch (:mod:`windowlab.compat`),
registers the core models and loads every paper project, so configs can use their
``type=`` names directly.
"""
from . import compat  # noqa: F401  (must run before any checkpoint is loaded)
from . import engine, models  # noqa: F401  (registers the core hooks, backbones and layers)
from .registry import LAYERS, load_projects, register_model

__version__ = '0.1.0'

PROJECTS = load_projects()

__all__ = ['LAYERS', 'register_model', 'PROJECTS', '__version__']
