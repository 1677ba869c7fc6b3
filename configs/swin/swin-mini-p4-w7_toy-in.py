# Classification with a small Swin on toy-in (python tools/make_toy_data.py): CPU tests.
_base_ = [
    '../_base_/models/swin-t-p4-w7_in1k-cls.py',
    '../_base_/datasets/toy_imagenet.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
                  window_size=4, drop_path_rate=0.0),
    head=dict(num_classes=4, in_channels=256, loss=dict(_delete_=True, type='CrossEntropyLoss')),
    train_cfg=None)
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# visualization: 64-pixel toy images are painted at 224 so that the label text is readable
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2),
                     visualization=dict(resize=224))
