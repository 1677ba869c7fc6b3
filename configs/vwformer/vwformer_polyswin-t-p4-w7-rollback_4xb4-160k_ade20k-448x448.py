# VWFormer on the shift-equivariant dense PolySwin-T (projects/shift_equivariant, roll_back=True),
# ADE20K 160k, official VWFormer recipe. Backbone, 448x448 crops and test padding as
# configs/shift_equivariant/upernet_polyswin-t-p4-w7-rollback_8xb2-160k_ade20k-448x448.py.
# VWHead's fixed 8x8 window grid is not shift-equivariant; ShiftConsistencyHook measures it.
_base_ = './vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'
crop_size = (448, 448)
pretrained = 'checkpoints/polyswin-t-p4-w7_in1k_windowlab.pth'
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=224)),
    backbone=dict(
        _delete_=True, type='PolySwin', arch='tiny', window_size=7, drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3), roll_back=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='aps')]
