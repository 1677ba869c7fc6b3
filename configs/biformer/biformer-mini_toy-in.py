# Classification with a small BiFormer on toy-in (64x64, python tools/make_toy_data.py): CPU tests.
_base_ = [
    '../_base_/datasets/toy_imagenet.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='BiFormer',
        arch=dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        n_win=2,  # stage maps 16, 8, 4, 2
        topks=(1, 2, 4, -1),
        out_indices=(3, ),
        out_norm_cfg=dict(type='BN')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=256,
              loss=dict(type='CrossEntropyLoss')))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1)
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
# visualization: 64-pixel toy images are painted at 224 so that the label text is readable
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2),
                     visualization=dict(resize=224))
