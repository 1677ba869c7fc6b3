# Mask R-CNN 1x COCO with the shift-equivariant dense PolyTwins-SVT-S (roll_back=True). Every
# stage map must be a multiple of its window (7) and sub-sampling ratio (8, 4, 2, 1): images are
# padded to a multiple of 224.
_base_ = ['./mask-rcnn_polyswin-t-p4-w7-rollback_fpn_1x_coco.py']
pretrained = 'checkpoints/polytwins-svt-s_in1k_windowlab.pth'
model = dict(
    backbone=dict(
        _delete_=True, type='PolyTwins', arch='small', drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3), roll_back=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 256, 512]))
