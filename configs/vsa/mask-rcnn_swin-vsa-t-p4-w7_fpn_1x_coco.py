# Mask R-CNN Swin-VSA-T 1x COCO: the Swin-T detection recipe (AdamW 1e-4, wd 0.05, drop path
# 0.2) with VSA in every block. Swin-VSA was never released: train
# swin-vsa-t-p4-w7_16xb64_in1k.py first; its checkpoint initialises the backbone.
_base_ = '../swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
pretrained = 'work_dirs/swin-vsa-t-p4-w7_16xb64_in1k/epoch_300.pth'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
