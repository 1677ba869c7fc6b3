"""Painting classification predictions of ``tools/test.py --tta --show-dir``."""
from mmpretrain.engine.hooks import VisualizationHook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class TTAVisualizationHook(VisualizationHook):
    """mmpretrain's ``VisualizationHook`` for test-time augmentation: it paints the first view
    of each image (the tta_pipeline's unflipped one) with the merged prediction. The plain
    hook expects one input tensor per image and stops at the tuple of views."""

    def _draw_samples(self, batch_idx, data_batch, data_samples, step=0):
        first_view = list(data_batch['inputs'][0])  # inputs: one tuple of images per view
        super()._draw_samples(batch_idx, dict(data_batch, inputs=first_view), data_samples, step)
