# Cascade Mask R-CNN Swin-T 3x COCO with GIoU and 4conv1fc heads (official Swin detection recipe
# cascade_mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py).
# Official: box AP 50.4, mask AP 43.7.
_base_ = [
    '../_base_/models/cascade-mask-rcnn_swin-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/schedules/swin_adamw_det_3x.py',
    '../_base_/default_runtime_det.py',
]
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
head_norm_cfg = dict(type='SyncBN', requires_grad=True)


def giou_head(stds):
    return dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=80,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=head_norm_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


model = dict(
    backbone=dict(drop_path_rate=0.2, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    roi_head=dict(bbox_head=[
        giou_head([0.1, 0.1, 0.2, 0.2]),
        giou_head([0.05, 0.05, 0.1, 0.1]),
        giou_head([0.033, 0.033, 0.067, 0.067]),
    ]))
