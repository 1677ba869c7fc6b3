"""The one registration point of windowlab.

* :data:`LAYERS` holds the replaceable components that backbones build from config dicts
  (window attention kernels, anchoring operators, ...). Example::

      attn_cfg=dict(type='WindowMSA')          # plain (shifted) window attention
      attn_cfg=dict(type='VSAWindowAttention')  # varied-size windows (projects/vsa)

* :func:`register_model` puts a backbone or head into the model registries of the
  downstream libraries (mmpretrain, mmdet, mmseg), so that the same ``type=`` name builds
  under each library's ``default_scope`` without ``custom_imports``. Names must be new:
  registering a name that upstream already uses (e.g. ``SwinTransformer``) raises.

* The paper packages under :mod:`windowlab.projects` (the repository's ``projects/`` folder)
  are imported by :func:`load_projects`. The core never imports a paper by name; papers
  import the core.

Registration is lazy, per library, so that ``import windowlab`` costs little more than
torch and mmengine, and a tool pays only for its own task's library. ``import windowlab``
appends one import location (``windowlab.scopes.<library>``) to the registries of mmpretrain,
mmdet and mmseg that windowlab registers into; mmengine imports a registry's locations the
first time the registry is asked for a name, after the library's own models, so name
collisions are still seen. A library whose registry module is not imported yet gets the
location the moment it is (an import hook on ``<library>.registry``).
"""
import importlib.abc
import sys
from importlib import import_module

from mmengine.registry import Registry


def build_layer(cfg, registry, default_args=None):
    """Build a component straight from ``registry`` (no default-scope switching, which
    would look for windowlab layers in mmdet/mmseg/mmpretrain registries)."""
    args = dict(cfg)
    if default_args:
        for key, value in default_args.items():
            args.setdefault(key, value)
    layer_type = args.pop('type', None)
    if layer_type is None:
        raise KeyError(f'a windowlab layer config needs a "type"; got {cfg}')
    if not isinstance(layer_type, str):
        return layer_type(**args)
    layer_cls = registry.module_dict.get(layer_type)
    if layer_cls is None:  # the papers' layers register when their package is imported
        load_projects()
        layer_cls = registry.module_dict.get(layer_type)
    if layer_cls is None:
        raise KeyError(f'unknown windowlab layer type {layer_type!r}; registered: '
                       f'{sorted(registry.module_dict)}')
    try:
        return layer_cls(**args)
    except TypeError as e:
        raise TypeError(f'{layer_type}: {e}') from e


LAYERS = Registry('windowlab layer', scope='windowlab', build_func=build_layer)

# The tasks: short name -> (the OpenMMLab library and ``default_scope`` that serves it, the
# task's full name). The maps below are derived from it.
TASKS = {'cls': ('mmpretrain', 'classification'), 'det': ('mmdet', 'detection'),
         'seg': ('mmseg', 'segmentation')}
SCOPE_OF_TASK = {task: scope for task, (scope, _) in TASKS.items()}
TASK_OF_LIBRARY = {scope: task for task, scope in SCOPE_OF_TASK.items()}
# The registries of each library that windowlab registers into; all of them import windowlab's
# location, whichever is asked first.
LAZY_REGISTRIES = ('MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS')

_MODELS = []          # (name, class, tasks) for every register_model() call, in order
_REGISTERED = set()   # tasks whose library registry already holds windowlab's models


def _library_registry(task):
    """The ``MODELS`` registry of ``task``'s library."""
    return import_module(f'{SCOPE_OF_TASK[task]}.registry').MODELS


def _register(registry, key, cls):
    existing = registry.module_dict.get(key)
    if existing is not None and existing is not cls:
        raise KeyError(
            f'{key!r} is already registered in {registry.scope}.MODELS by '
            f'{existing.__module__}; windowlab names must not shadow upstream '
            'ones. Pick another name.')
    if existing is None:
        registry.register_module(name=key, module=cls)


def register_model(name=None, tasks=('cls', 'det', 'seg')):
    """Class decorator: register a model component under ``name`` for each of ``tasks``.

    The class goes into a task library's ``MODELS`` when that registry first looks a name up
    (or at once, if it already has: see the module docstring).

    Args:
        name (str, optional): registry name; defaults to the class name.
        tasks (tuple[str]): any of ``'cls'`` (mmpretrain), ``'det'`` (mmdet),
            ``'seg'`` (mmseg).
    """
    for task in tasks:
        if task not in SCOPE_OF_TASK:
            raise ValueError(f'unknown task {task!r}; choose from {sorted(SCOPE_OF_TASK)}')

    def wrap(cls):
        key = name or cls.__name__
        for task in _REGISTERED.intersection(tasks):
            _register(_library_registry(task), key, cls)
        _MODELS.append((key, cls, tuple(tasks)))  # for the libraries that register later
        return cls

    return wrap


def register_task(task):
    """Put every windowlab model of ``task`` into its library's ``MODELS``: the core models,
    every paper package, and the paper modules that only that task needs. Runs once per task;
    ``windowlab.scopes.<library>`` calls it from the library's lazy import."""
    if task in _REGISTERED:
        return
    registry = _library_registry(task)
    registry.import_from_location()  # the library's own models first, to see name collisions
    from . import models  # the core's own models
    for module in models.TASK_MODULES.get(task, ()):
        import_module(module, models.__name__)
    load_projects(task)
    for key, cls, tasks in _MODELS:
        if task in tasks:
            _register(registry, key, cls)
    _REGISTERED.add(task)


def load_projects(task=None):
    """Import every paper package under :mod:`windowlab.projects`; returns their names.

    A paper whose modules need a task library (e.g. VWFormer's decode head subclasses
    mmseg's) lists them in ``TASK_MODULES = {'seg': ('.vw_head', ...)}`` in its
    ``__init__.py``; they are imported only for that ``task``.
    """
    from . import projects

    names = projects.names()
    for name in names:
        package = import_module(f'{projects.__name__}.{name}')
        for module in getattr(package, 'TASK_MODULES', {}).get(task, ()):
            import_module(module, package.__name__)
    return names


def _attach(library):
    """Give ``library``'s registries windowlab's import location (see the module docstring)."""
    registry_module = sys.modules[f'{library}.registry']
    location = f'{__name__.rpartition(".")[0]}.scopes.{library}'
    for name in LAZY_REGISTRIES:
        registry = getattr(registry_module, name, None)
        if registry is None:
            continue
        if location not in registry._locations:
            registry._locations.append(location)
        if registry._imported:  # already looked something up: it will not import again
            register_task(TASK_OF_LIBRARY[library])


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(name)`` right after one of ``names`` has been imported."""

    def __init__(self, names, callback):
        self.pending = set(names)
        self.callback = callback

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module
        callback = self.callback

        def exec_then_callback(module):
            exec_module(module)
            callback(fullname.rpartition('.')[0])

        spec.loader.exec_module = exec_then_callback
        return spec


def attach_to_libraries():
    """Called once by ``import windowlab``: attach now to the libraries whose registry module
    is imported, and to the others as soon as it is."""
    later = []
    for library in SCOPE_OF_TASK.values():
        if f'{library}.registry' in sys.modules:
            _attach(library)
        else:
            later.append(f'{library}.registry')
    if later:
        sys.meta_path.insert(0, _AfterImport(later, _attach))
