# Mask R-CNN Swin-T 3x COCO, multi-scale 480-800 + crop (mmdet 3.3 recipe). Official: box AP 46.0, mask AP 41.6.
_base_ = [
    '../_base_/models/mask-rcnn_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/schedules/swin_adamw_det_3x.py',
    '../_base_/default_runtime_det.py',
]
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
