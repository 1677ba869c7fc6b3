# Cascade Mask R-CNN Swin-VSA-T 1x COCO: 12 epochs, steps 8/11, otherwise as the 3x config.
_base_ = './cascade-mask-rcnn_swin-vsa-t-p4-w7_fpn_giou-4conv1f_ms-crop-3x_coco.py'
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
