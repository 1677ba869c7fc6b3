"""The one registration point of windowlab.

* :data:`LAYERS` holds the replaceable components that backbones build from config dicts
  (window attention kernels, anchoring operators, ...). Example::

      attn_cfg=dict(type='WindowMSA')          # plain (shifted) window attention
      attn_cfg=dict(type='VSAWindowAttention')  # varied-size windows (projects/vsa)

* :func:`register_model` puts a backbone or head into the model registries of the
  downstream libraries (mmpretrain, mmdet, mmseg), so that the same ``type=`` name builds
  under each library's ``default_scope`` without ``custom_imports``. Names must be new:
  registering a name that upstream already uses (e.g. ``SwinTransformer``) raises.

* :func:`load_projects` imports every paper package under :mod:`windowlab.projects` (the
  repository's ``projects/`` folder). The core never imports a paper by name; papers
  import the core.
"""
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
    if layer_cls is None:
        raise KeyError(f'unknown windowlab layer type {layer_type!r}; registered: '
                       f'{sorted(registry.module_dict)}')
    try:
        return layer_cls(**args)
    except TypeError as e:
        raise TypeError(f'{layer_type}: {e}') from e


LAYERS = Registry('windowlab layer', scope='windowlab', build_func=build_layer)

TASK_SCOPES = {'cls': 'mmpretrain', 'det': 'mmdet', 'seg': 'mmseg'}


def _model_registry(task):
    """The task library's MODELS registry, with the library's own models imported (so that
    a name collision is seen now, not when the library registers its models later)."""
    try:
        scope = TASK_SCOPES[task]
    except KeyError:
        raise ValueError(f'unknown task {task!r}; choose from {sorted(TASK_SCOPES)}') from None
    registry = import_module(f'{scope}.registry').MODELS
    registry.import_from_location()
    return registry


def register_model(name=None, tasks=('cls', 'det', 'seg')):
    """Class decorator: register a model component under ``name`` for each of ``tasks``.

    Args:
        name (str, optional): registry name; defaults to the class name.
        tasks (tuple[str]): any of ``'cls'`` (mmpretrain), ``'det'`` (mmdet),
            ``'seg'`` (mmseg).
    """

    def wrap(cls):
        key = name or cls.__name__
        for task in tasks:
            registry = _model_registry(task)
            existing = registry.module_dict.get(key)
            if existing is not None and existing is not cls:
                raise KeyError(
                    f'{key!r} is already registered in {registry.scope}.MODELS by '
                    f'{existing.__module__}; windowlab names must not shadow upstream '
                    'ones. Pick another name.')
            if existing is None:
                registry.register_module(name=key, module=cls)
        return cls

    return wrap


def load_projects():
    """Import every paper package under :mod:`windowlab.projects`; returns their names."""
    from . import projects

    names = projects.names()
    for name in names:
        import_module(f'{projects.__name__}.{name}')
    return names
