# Mask R-CNN Swin-VSA-T 3x COCO, multi-scale 480-800 + crop: the Swin-T 3x recipe with VSA.
_base_ = '../swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
pretrained = 'work_dirs/swin-vsa-t-p4-w7_16xb64_in1k/epoch_300.pth'   # see the 1x config
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
