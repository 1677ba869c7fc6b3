# UperNet ADE20K 160k with the shift-equivariant dense PolySwin-T (roll_back=True). The anchors
# need every stage map to be a multiple of the window (7) and of 2: training crops are 448x448
# (not 512) and test images are padded to a multiple of 224 (the padding is cropped off again).
_base_ = ['../swin/upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py']
crop_size = (448, 448)
pretrained = 'checkpoints/polyswin-t-p4-w7_in1k_windowlab.pth'
data_preprocessor = dict(size=crop_size, test_cfg=dict(size_divisor=224))
model = dict(
    data_preprocessor=data_preprocessor,
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
