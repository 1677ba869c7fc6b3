# RetinaNet BiFormer-S 1x COCO (rayleizhu/BiFormer object_detection/configs/coco/
# retinanet.1x.biformer_small.py, 8 GPUs x 2 images). Official: box AP 45.9 (47.3 reproduced).
_base_ = [
    '../_base_/models/retinanet_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime_det.py',
]
# The official ImageNet release (https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHDyM-x9KWRBZ832/
# root/content), saved locally; windowlab converts it on load (final BatchNorm and head dropped).
pretrained = 'checkpoints/biformer_small_in1k.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiFormer',
        arch='small',
        n_win=16,
        topks=(1, 4, 16, -1),
        auto_pad=True,  # any image size: BRA pads to multiples of n_win
        drop_path_rate=0.2,
        # As official: all 4 maps (norm0..3 = BiFormer_mm's extra_norms, so that official
        # RetinaNet files load as they are); the FPN starts at level 1.
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[64, 128, 256, 512], start_level=1))
# Official: AdamW lr 1e-4, weight decay 1e-4 (the RetinaNet config, unlike Mask R-CNN's 0.05),
# mmdet 1x steps (500-iter warm-up, x0.1 at epochs 8 and 11), fp16 with loss scale 512.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
