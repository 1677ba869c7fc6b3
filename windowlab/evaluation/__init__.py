"""Evaluation beyond the libraries' metrics (registered in mmengine's HOOKS on import)."""
from .shift_consistency import (ShiftConsistencyHook, classification_agreement,
                                segmentation_agreement)

__all__ = ['ShiftConsistencyHook', 'classification_agreement', 'segmentation_agreement']
