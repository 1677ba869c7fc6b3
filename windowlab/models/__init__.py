from . import layers, tta  # noqa: F401
from .backbones import WLSwinTransformer

__all__ = ['WLSwinTransformer']
