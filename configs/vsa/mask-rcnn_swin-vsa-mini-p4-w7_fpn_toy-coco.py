# Mask R-CNN with a small Swin-VSA on toy-coco (python tools/make_toy_data.py): CPU tests.
_base_ = '../swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True)))
