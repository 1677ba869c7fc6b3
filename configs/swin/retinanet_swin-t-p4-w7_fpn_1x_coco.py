# RetinaNet Swin-T 1x COCO (mmdet 3.3 retinanet_swin-t-p4-w7_fpn_1x_coco.py). mmdet: box AP 37.0.
_base_ = [
    '../_base_/models/retinanet_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/swin_adamw_det_1x.py',
    '../_base_/default_runtime_det.py',
]
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
