# Mask R-CNN BiFormer-B 1x COCO (official maskrcnn.1x.biformer_base.py). Official: box AP 48.6,
# mask AP 43.7.
_base_ = './mask-rcnn_biformer-s_fpn_1x_coco.py'
pretrained = 'checkpoints/biformer_base_in1k.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
