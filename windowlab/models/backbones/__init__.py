from .swin import WLSwinTransformer

__all__ = ['WLSwinTransformer']
