"""Test-time augmentation for classification (``tools/test.py --tta``).

mmpretrain's ``AverageClsScoreTTA`` averages the scores of the views but keeps the first
view's ``pred_label``; :class:`ClsScoreTTAModel` gives the label of the averaged scores.
Imported (and registered) only when mmpretrain looks a model up.
"""
from mmpretrain.models.tta import AverageClsScoreTTA

from ..registry import register_model


@register_model(tasks=('cls', ))
class ClsScoreTTAModel(AverageClsScoreTTA):
    """``AverageClsScoreTTA`` whose ``pred_label`` is the argmax of the averaged scores."""

    def _merge_single_sample(self, data_samples):
        merged = super()._merge_single_sample(data_samples)
        return merged.set_pred_label(merged.pred_score.argmax(-1, keepdim=True))
