"""windowlab: window- and sparse-attention backbones for mmpretrain, mmdet and mmseg.

``import windowlab`` makes the stack work on current torch (:mod:`windowlab.compat`),
registers the core hooks and layers, and attaches windowlab to the model registries of
mmpretrain, mmdet and mmseg: the first time one of them looks a ``type=`` name up, every
windowlab model of that task (core and papers) is registered there, so configs can use
their names directly. Nothing of a task library is imported before a tool needs it (see
:mod:`windowlab.registry`).
"""
from . import compat  # noqa: F401  (must run before any checkpoint is loaded)
from . import engine, evaluation, models  # noqa: F401  (core hooks, backbones and layers)
from .projects import names as _project_names
from .registry import LAYERS, attach_to_libraries, load_projects, register_model

__version__ = '0.1.0'

PROJECTS = _project_names()  # the paper packages under windowlab.projects
attach_to_libraries()

__all__ = ['LAYERS', 'register_model', 'load_projects', 'PROJECTS', '__version__']
