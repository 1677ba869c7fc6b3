# RetinaNet BiFormer-B 1x COCO (official retinanet.1x.biformer_base.py). Official: box AP 47.1.
_base_ = './retinanet_biformer-s_fpn_1x_coco.py'
pretrained = 'checkpoints/biformer_base_in1k.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
