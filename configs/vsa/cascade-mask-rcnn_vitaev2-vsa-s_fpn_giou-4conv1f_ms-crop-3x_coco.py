# Cascade Mask R-CNN ViTAEv2-VSA-S 3x COCO with GIoU / 4conv1fc heads (official
# cascade_mask_rcnn_vitaev2_vsa_s_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py): drop path
# 0.25, AdamW 1e-4, wd 0.05, 500-iter warm-up, steps 27/33. Official: box AP 51.9, mask AP 44.8.
_base_ = '../swin/cascade-mask-rcnn_swin-t-p4-w7_fpn_giou-4conv1f_ms-crop-3x_coco.py'
pretrained = 'checkpoints/ViTAEv2-VSA-S.pth.tar'   # see mask-rcnn_vitaev2-vsa-s_*_1x_coco.py
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAEv2VSA',
        arch='s',
        variant='det',
        drop_path_rate=0.25,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 256, 512]))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
