# Cascade Mask R-CNN Swin-VSA-T 3x COCO (GIoU, 4conv1fc heads): the Swin-T recipe with VSA.
_base_ = '../swin/cascade-mask-rcnn_swin-t-p4-w7_fpn_giou-4conv1f_ms-crop-3x_coco.py'
pretrained = 'work_dirs/swin-vsa-t-p4-w7_16xb64_in1k/epoch_300.pth'   # see mask-rcnn_*_1x
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
