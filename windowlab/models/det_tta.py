"""Test-time augmentation for instance segmentation (``tools/test.py --tta`` on Mask R-CNN).

mmdet's ``DetTTAModel`` merges boxes only and refuses predictions with masks.
:class:`InstanceTTAModel` merges the masks with them: every view's boxes and masks are
flipped back to the original image, pooled, and the masks of the boxes that survive the
class-wise NMS are kept. Imported (and registered) only when mmdet looks a model up.
"""
import torch
from mmcv.ops import batched_nms
from mmdet.models.test_time_augs import DetTTAModel
from mmengine.structures import InstanceData

from ..registry import register_model

_FLIP_DIMS = {'horizontal': (-1, ), 'vertical': (-2, ), 'diagonal': (-2, -1)}


@register_model(tasks=('det', ))
class InstanceTTAModel(DetTTAModel):
    """``DetTTAModel`` (same ``tta_cfg``: ``nms``, ``max_per_img``) that also merges
    ``pred_instances.masks`` (``(N, H, W)`` at the original image size)."""

    def _merge_single_sample(self, data_samples):
        if data_samples[0].pred_instances.get('masks', None) is None:
            return super()._merge_single_sample(data_samples)
        preds = [s.pred_instances for s in data_samples]
        metas = [s.metainfo for s in data_samples]
        bboxes, scores = self.merge_aug_bboxes([p.bboxes for p in preds], [p.scores for p in preds],
                                               metas)
        labels = torch.cat([p.labels for p in preds])
        masks = torch.cat([_unflip(torch.as_tensor(p.masks), m) for p, m in zip(preds, metas)])
        if bboxes.numel() == 0:
            return data_samples[0]
        dets, keep = batched_nms(bboxes, scores, labels, self.tta_cfg.nms)
        keep = keep[:self.tta_cfg.max_per_img]
        merged = InstanceData(bboxes=dets[:len(keep), :-1], scores=dets[:len(keep), -1],
                              labels=labels[keep], masks=masks[keep])
        result = data_samples[0]
        result.pred_instances = merged
        return result


def _unflip(masks, meta):
    """Masks of a flipped view back in the original image's orientation."""
    if not meta.get('flip', False):
        return masks
    return masks.flip(_FLIP_DIMS[meta['flip_direction']])
