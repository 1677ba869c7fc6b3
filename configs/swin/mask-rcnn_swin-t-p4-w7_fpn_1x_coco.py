# Mask R-CNN Swin-T 1x COCO (mmdet 3.3 recipe). Official: box AP 42.7, mask AP 39.3.
_base_ = [
    '../_base_/models/mask-rcnn_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/swin_adamw_det_1x.py',
    '../_base_/default_runtime_det.py',
]
# The official ImageNet release, used as it is (windowlab converts it on load).
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
