# Mask R-CNN ViTAEv2-VSA-S 3x COCO (official ..._vitaev2_vsa_s_mstrain_480-800_adamw_3x_coco.py):
# 36 epochs, steps at 27 and 33, drop path 0.25. Official: box AP 48.1, mask AP 42.9.
_base_ = './mask-rcnn_vitaev2-vsa-s_fpn_ms-crop-1x_coco.py'
model = dict(backbone=dict(drop_path_rate=0.25))
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
