# VWFormer Swin-B, ADE20K 640x640, 160k iterations: the official
# vw_swin_base_patch4_window12_640x640_160k_ade20k_pretrain_384x384_22K.py
# (official: 52.5 mIoU single scale, 53.5 multi-scale + flip).
# The official config loads mmseg's swin_base_patch4_window12_384_20220317-55b0104a.pth, which
# is the ImageNet-1k 384x384 model despite the "22K" in the config name; this is the same
# model in its original release.
_base_ = './vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'
crop_size = (640, 640)
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384.pth'  # noqa
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='base', window_size=12, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))

# ADE20K at 640x640 (mmseg 1.2 configs/_base_/datasets/ade20k_640x640.py).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
