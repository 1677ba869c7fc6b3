# PolyViT, narrowed, on toy-in (python tools/make_toy_data.py; 64x64, 4 classes): CPU tests.
_base_ = [
    '../_base_/datasets/toy_imagenet.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='PolyViT', arch=dict(embed_dims=64, depth=2, num_heads=2), patch_size=8),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# visualization: 64-pixel toy images are painted at 224 so that the label text is readable
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2),
                     visualization=dict(resize=224))
# the circular-shift consistency next to the accuracy (tools/analysis_tools/shift_consistency.py)
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='paper')]
