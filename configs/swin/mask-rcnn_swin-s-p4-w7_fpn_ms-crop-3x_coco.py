# Mask R-CNN Swin-S 3x COCO (mmdet 3.3 recipe). Official: box AP 48.2, mask AP 43.2.
_base_ = './mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(arch='small', drop_path_rate=0.2,
                           init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
