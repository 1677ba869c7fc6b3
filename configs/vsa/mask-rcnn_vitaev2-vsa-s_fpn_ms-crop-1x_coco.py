# Mask R-CNN ViTAEv2-VSA-S 1x COCO, the official recipe (ViTAE-VSA Object-Detection
# mask_rcnn_vitaev2_vsa_s_mstrain_480-800_adamw_1x_coco.py): multi-scale 480-800 + crop,
# AdamW 1e-4, weight decay 0.05 (none on norms / relative position tables), 500-iter warm-up,
# steps at 8 and 11, drop path 0.1, 8 GPUs x 2 images. Official: box AP 45.9, mask AP 41.4.
_base_ = [
    '../_base_/models/mask-rcnn_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/schedules/swin_adamw_det_1x.py',
    '../_base_/default_runtime_det.py',
]
# The released ImageNet weights (OneDrive link in the official README, "ViTAEv2*-S+VSA"), as
# downloaded: the backbone reads their 'state_dict_ema' and converts it on load.
pretrained = 'checkpoints/ViTAEv2-VSA-S.pth.tar'
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAEv2VSA',
        arch='s',
        variant='det',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 256, 512]))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
