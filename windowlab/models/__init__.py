from . import layers  # noqa: F401
from .backbones import WLSwinTransformer

# Core modules that need a task library (they subclass its models): imported only when that
# library registers windowlab's models (windowlab.registry.register_task), as papers'
# TASK_MODULES are.
TASK_MODULES = {'cls': ('.cls_tta', ), 'det': ('.det_tta', )}

__all__ = ['WLSwinTransformer', 'TASK_MODULES']
