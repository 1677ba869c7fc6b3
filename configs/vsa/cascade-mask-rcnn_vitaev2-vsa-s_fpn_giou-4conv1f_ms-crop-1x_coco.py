# Cascade Mask R-CNN ViTAEv2-VSA-S 1x COCO (official
# cascade_mask_rcnn_vitaev2_vsa_s_mstrain_480-800_giou_4conv1f_adamw_1x_coco.py): 12 epochs,
# steps 8/11, drop path 0.05. Official: box AP 49.8, mask AP 43.0.
_base_ = './cascade-mask-rcnn_vitaev2-vsa-s_fpn_giou-4conv1f_ms-crop-3x_coco.py'
model = dict(backbone=dict(drop_path_rate=0.05))
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
